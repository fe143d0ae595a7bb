import CImageCodecs
import Foundation
import TesseraEngine

/// A TIFF or BigTIFF file open for reading through libtiff: pages, their facts, and rows of any page on demand.
/// Rows are decoded one block row (a strip, or a row of tiles) at a time and the last one is kept, so reading a
/// page top to bottom costs one decode of each block and memory of one block row, whatever the image height.
///
/// Not thread-safe: one reader per thread (libtiff keeps the current page in the handle).
public final class TIFFFile {
    /// One page as stored.
    public struct Page: Equatable, Sendable {
        public let width: Int, height: Int
        /// Channels of the rows `rows(_:page:)` returns (a palette page decodes to RGB).
        public let channels: Int
        /// 8, 16 (unsigned) or 32 (float) of the returned samples; 1-bit pages read as 8-bit 0 / 255.
        public let bitDepth: Int
        /// Bits per sample in the file.
        public let storedBits: Int
        public let lastIsAlpha: Bool
        public let tiled: Bool
        public let blockWidth: Int, blockHeight: Int
        public let planar: Bool
        /// TIFF Compression tag value (1 none, 5 LZW, 7 JPEG, 8 deflate, 32773 PackBits).
        public let compression: Int
        public let description: String?
    }

    public let file: String
    public let isBigTIFF: Bool
    public let pageCount: Int
    private let handle: OpaquePointer
    /// The in-memory file a reader over `Data` reads from, kept alive as long as the handle.
    private let data: Data?

    /// A decoded block row (strip or tile row) larger than this fails, before it is allocated: 512 MiB is a
    /// 65536-pixel-wide row of 1024 x 1024 16-bit gray tiles... over 8 times.
    public static let defaultMaxBlockBytes = 512 << 20

    /// Opens the file at `url` (read with read(2), not mapped: mapped pages of a slide would count as ours).
    public init(url: URL, maxBlockBytes: Int = TIFFFile.defaultMaxBlockBytes) throws {
        file = url.path
        data = nil
        var err = [CChar](repeating: 0, count: 512)
        guard let h = tc_tiff_open(url.path, UInt64(max(0, maxBlockBytes)), &err, err.count) else {
            throw FileError(file: url.path, reason: String(nulTerminated: err))
        }
        handle = h
        (isBigTIFF, pageCount) = try TIFFFile.summary(h, file: url.path)
    }

    /// Opens an in-memory file; `file` names it in errors.
    public init(data: Data, file: String, maxBlockBytes: Int = TIFFFile.defaultMaxBlockBytes) throws {
        self.file = file
        self.data = data
        var err = [CChar](repeating: 0, count: 512)
        let h = data.withUnsafeBytes { buf in
            tc_tiff_open_memory(
                buf.bindMemory(to: UInt8.self).baseAddress, buf.count, UInt64(max(0, maxBlockBytes)), &err,
                err.count)
        }
        guard let h else { throw FileError(file: file, reason: String(nulTerminated: err)) }
        handle = h
        (isBigTIFF, pageCount) = try TIFFFile.summary(h, file: file)
    }

    deinit {
        var err = [CChar](repeating: 0, count: 8)
        _ = tc_tiff_close(handle, &err, err.count)
    }

    private static func summary(_ h: OpaquePointer, file: String) throws -> (Bool, Int) {
        var info = tc_tiff_info()
        var err = [CChar](repeating: 0, count: 512)
        guard tc_tiff_page_info(h, 0, &info, nil, &err, err.count) == 0 else {
            var ignored = [CChar](repeating: 0, count: 8)
            _ = tc_tiff_close(h, &ignored, ignored.count)
            throw FileError(file: file, reason: "page 1: " + String(nulTerminated: err))
        }
        return (info.big != 0, Int(info.pages))
    }

    /// Facts of page `index` (0-based).
    public func page(_ index: Int) throws -> Page {
        guard (0..<pageCount).contains(index) else {
            throw FileError(file: file, reason: "page \(index + 1) is past the file's \(pageCount) pages")
        }
        var info = tc_tiff_info()
        var text: UnsafePointer<CChar>?
        var err = [CChar](repeating: 0, count: 512)
        guard tc_tiff_page_info(handle, UInt32(index), &info, &text, &err, err.count) == 0 else {
            throw FileError(file: file, reason: "page \(index + 1): " + String(nulTerminated: err))
        }
        return Page(
            width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
            bitDepth: Int(info.out_bits), storedBits: Int(info.bits), lastIsAlpha: info.extra_alpha != 0,
            tiled: info.tiled != 0, blockWidth: Int(info.block_width), blockHeight: Int(info.block_height),
            planar: info.planar == 2, compression: Int(info.compression), description: text.map { String(cString: $0) })
    }

    /// Rows `rows` of page `index` as an image of those rows.
    public func rows(_ rows: Range<Int>, page index: Int) throws -> Image {
        let p = try page(index)
        return try window(PixelWindow(x: 0, y: rows.lowerBound, width: p.width, height: rows.count), page: index)
    }

    /// The pixels of `window` (inside the page) of page `index`. A tiled page decodes only the tiles under it.
    public func window(_ window: PixelWindow, page index: Int) throws -> Image {
        let p = try page(index)
        guard window.x >= 0, window.y >= 0, window.width > 0, window.height > 0, window.x + window.width <= p.width,
            window.y + window.height <= p.height
        else {
            throw FileError(
                file: file, reason: "window \(window) is outside page \(index + 1)'s \(p.width)x\(p.height) pixels")
        }
        let n = window.width * window.height * p.channels
        var err = [CChar](repeating: 0, count: 512)
        func read(_ out: UnsafeMutableRawBufferPointer) -> Int32 {
            tc_tiff_read_window(
                handle, UInt32(index), UInt32(window.x), UInt32(window.y), UInt32(window.width),
                UInt32(window.height), out.baseAddress, out.count, &err, err.count)
        }
        let samples: Image.Samples
        var rc: Int32 = 0
        switch p.bitDepth {
        case 8:
            samples = .uint8(
                [UInt8](unsafeUninitializedCapacity: n) { b, c in
                    rc = read(UnsafeMutableRawBufferPointer(b))
                    c = n
                })
        case 16:
            samples = .uint16(
                [UInt16](unsafeUninitializedCapacity: n) { b, c in
                    rc = read(UnsafeMutableRawBufferPointer(b))
                    c = n
                })
        default:
            samples = .float32(
                [Float](unsafeUninitializedCapacity: n) { b, c in
                    rc = read(UnsafeMutableRawBufferPointer(b))
                    c = n
                })
        }
        guard rc == 0 else { throw FileError(file: file, reason: "page \(index + 1): " + String(nulTerminated: err)) }
        return Image(width: window.width, height: window.height, channels: p.channels, samples: samples)
    }

    /// The version line of the linked libtiff.
    public static var libraryVersion: String {
        String(cString: tc_tiff_version()).split(separator: "\n").first.map(String.init) ?? ""
    }
}
