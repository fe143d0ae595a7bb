import CImageCodecs
import Foundation
import TesseraEngine

/// TIFF compression schemes the writer offers (the reader takes whatever libtiff was built with).
public enum TIFFCompression: Int, Sendable, CaseIterable, Codable {
    case none = 1
    case lzw = 5
    case jpeg = 7
    case deflate = 8
    case packBits = 32773

    /// The name of a Compression tag value (any libtiff knows, not only those the writer offers).
    public static func name(_ value: Int) -> String {
        let names = [
            1: "uncompressed", 2: "CCITT RLE", 3: "CCITT G3", 4: "CCITT G4", 5: "LZW", 6: "old JPEG", 7: "JPEG",
            8: "deflate", 32946: "deflate", 32773: "PackBits", 34712: "JPEG 2000", 34925: "LZMA", 50000: "Zstandard",
            50001: "WebP", 34887: "LERC"
        ]
        return names[value] ?? "compression \(value)"
    }
}

/// How a written TIFF page is laid out.
public struct TIFFLayout: Equatable, Sendable {
    public var width: Int, height: Int, channels: Int
    /// 1, 8 or 16 (unsigned) or 32 (float).
    public var bitDepth: Int
    /// Tiles of this edge (a multiple of 16), or nil for strips of `stripRows` rows.
    public var tile: Int? = 256
    public var stripRows = 64
    public var planar = false
    public var compression = TIFFCompression.deflate
    /// Horizontal differencing before LZW or deflate (integer samples).
    public var predictor = true
    public var jpegQuality = 90
    public var lastIsAlpha = false
    /// 32-bit samples are unsigned integers (label images past 65535 objects), not floats.
    public var unsigned32 = false

    public init(width: Int, height: Int, channels: Int, bitDepth: Int) {
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
    }

    /// Rows one block holds: the tile edge or the strip height (at most the image height).
    public var blockHeight: Int { min(height, tile ?? stripRows) }

    /// BigTIFF is needed past 4 GiB; chosen at 2 GiB of uncompressed samples so compression never decides it.
    public var needsBigTIFF: Bool {
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (bytes, o2) = pixels.multipliedReportingOverflow(by: channels * max(1, bitDepth / 8))
        return o1 || o2 || bytes > 1 << 31
    }

    var raw: tc_tiff_layout {
        tc_tiff_layout(
            width: UInt32(clamping: width), height: UInt32(clamping: height), samples: Int32(clamping: channels),
            bits: Int32(clamping: bitDepth),
            sample_format: bitDepth == 32 && !unsigned32 ? Int32(TC_TIFF_FLOAT) : Int32(TC_TIFF_UINT),
            planar: planar ? 2 : 1, tile_width: UInt32(clamping: tile ?? 0),
            tile_height: UInt32(clamping: tile ?? stripRows),
            compression: Int32(compression.rawValue), predictor: predictor ? 2 : 1, jpeg_quality: Int32(jpegQuality),
            extra_alpha: lastIsAlpha ? 1 : 0)
    }
}

/// Writes TIFF pages row band by row band; only one block row is held, so pages of any height stream through.
/// Writing to the final name is the caller's choice: `AtomicFile.write(to:_:)` writes a temporary file and renames.
public final class TIFFWriter {
    public let file: String
    private var handle: OpaquePointer?
    public private(set) var layout: TIFFLayout?

    /// Creates (truncating) `url`; `bigTIFF` for files that may pass 4 GiB.
    public init(url: URL, bigTIFF: Bool) throws {
        file = url.path
        var err = [CChar](repeating: 0, count: 512)
        guard let h = tc_tiff_create(url.path, bigTIFF ? 1 : 0, &err, err.count) else {
            throw FileError(file: file, reason: String(nulTerminated: err))
        }
        handle = h
    }

    /// Reopens a file this writer checkpointed, to go on with page `pagesDone` (0-based) from `rowsDone` rows.
    public init(resuming url: URL, layout: TIFFLayout, pagesDone: Int, rowsDone: Int) throws {
        file = url.path
        var err = [CChar](repeating: 0, count: 512)
        var raw = layout.raw
        guard
            let h = tc_tiff_resume(
                url.path, &raw, UInt32(clamping: pagesDone), UInt32(clamping: rowsDone), &err, err.count)
        else { throw FileError(file: file, reason: "cannot resume: " + String(nulTerminated: err)) }
        handle = h
        self.layout = layout
    }

    deinit {
        if let handle {
            var err = [CChar](repeating: 0, count: 8)
            _ = tc_tiff_close(handle, &err, err.count)
        }
    }

    private func check(_ rc: Int32, _ err: [CChar]) throws {
        guard rc == 0 else { throw FileError(file: file, reason: String(nulTerminated: err)) }
    }

    private func open() throws -> OpaquePointer {
        guard let handle else { throw FileError(file: file, reason: "the file is already closed") }
        return handle
    }

    public func beginPage(_ layout: TIFFLayout, description: String? = nil) throws {
        var err = [CChar](repeating: 0, count: 512)
        var raw = layout.raw
        try check(tc_tiff_begin_page(try open(), &raw, description, &err, err.count), err)
        self.layout = layout
    }

    /// Appends rows (interleaved samples of the page's layout; 1-bit pages take one byte per sample, 0 or not).
    public func write(_ image: Image) throws {
        guard let layout, image.width == layout.width, image.channels == layout.channels,
            image.bitDepth == max(8, layout.bitDepth)
        else {
            throw FileError(
                file: file,
                reason: "rows of \(image.width) pixels, \(image.channels) channels, \(image.bitDepth) bits do not "
                    + "fit the page")
        }
        var err = [CChar](repeating: 0, count: 512)
        let h = try open()
        let rows = UInt32(image.height)
        let rc: Int32
        switch image.samples {
        case .uint8(let v): rc = v.withUnsafeBytes { tc_tiff_write_rows(h, $0.baseAddress, rows, &err, err.count) }
        case .uint16(let v): rc = v.withUnsafeBytes { tc_tiff_write_rows(h, $0.baseAddress, rows, &err, err.count) }
        case .float32(let v): rc = v.withUnsafeBytes { tc_tiff_write_rows(h, $0.baseAddress, rows, &err, err.count) }
        }
        try check(rc, err)
    }

    /// Encodes the tiles of `image` placed at (`x`, `y`) on the current tiled page: `x` and `y` are multiples of
    /// the tile edge, and so are the image's sides unless it reaches the page's right or bottom edge.
    public func writeTiles(_ image: Image, x: Int, y: Int) throws {
        guard let layout, image.channels == layout.channels, image.bitDepth == max(8, layout.bitDepth) else {
            throw FileError(
                file: file,
                reason: "a region of \(image.channels) channels, \(image.bitDepth) bits does not fit the page")
        }
        var err = [CChar](repeating: 0, count: 512)
        let h = try open()
        let (x0, y0, w, hh) = (UInt32(clamping: x), UInt32(clamping: y), UInt32(image.width), UInt32(image.height))
        let rc: Int32
        switch image.samples {
        case .uint8(let v):
            rc = v.withUnsafeBytes { tc_tiff_write_tiles(h, x0, y0, w, hh, $0.baseAddress, &err, err.count) }
        case .uint16(let v):
            rc = v.withUnsafeBytes { tc_tiff_write_tiles(h, x0, y0, w, hh, $0.baseAddress, &err, err.count) }
        case .float32(let v):
            rc = v.withUnsafeBytes { tc_tiff_write_tiles(h, x0, y0, w, hh, $0.baseAddress, &err, err.count) }
        }
        try check(rc, err)
    }

    /// Encodes `labels` (`width` x `height`, row-major) as the tiles at (`x`, `y`) of a 32-bit unsigned page
    /// (`TIFFLayout.unsigned32`), as `writeTiles(_:x:y:)` places an image.
    public func writeTiles(labels: [UInt32], width: Int, height: Int, x: Int, y: Int) throws {
        guard let layout, layout.bitDepth == 32, layout.unsigned32, layout.channels == 1, labels.count == width * height
        else { throw FileError(file: file, reason: "32-bit labels do not fit the page") }
        var err = [CChar](repeating: 0, count: 512)
        let h = try open()
        let rc = labels.withUnsafeBytes {
            tc_tiff_write_tiles(
                h, UInt32(clamping: x), UInt32(clamping: y), UInt32(clamping: width), UInt32(clamping: height),
                $0.baseAddress, &err, err.count)
        }
        try check(rc, err)
    }

    /// Rows of the current page encoded into the file so far.
    public var rowsWritten: Int { handle.map { Int(tc_tiff_rows_written($0)) } ?? 0 }

    /// Makes the rows written so far durable and resumable (`init(resuming:...)`).
    public func checkpoint() throws {
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_tiff_checkpoint(try open(), &err, err.count), err)
    }

    public func endPage() throws {
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_tiff_end_page(try open(), &err, err.count), err)
    }

    /// Copies every page of another file this writer made, block by block without decoding.
    public func appendPages(of url: URL) throws {
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_tiff_append_pages(try open(), url.path, &err, err.count), err)
    }

    /// Completes the file.
    public func close() throws {
        guard let h = handle else { return }
        handle = nil
        var err = [CChar](repeating: 0, count: 512)
        try check(tc_tiff_close(h, &err, err.count), err)
    }

    /// Writes `pages` (images of one size and layout each) to `url` in one go, atomically.
    public static func write(_ pages: [Image], to url: URL, layout base: TIFFLayout? = nil) throws {
        try AtomicFile.write(to: url) { temporary in
            let big = pages.contains {
                TIFFLayout(
                    width: $0.width, height: $0.height, channels: $0.channels,
                    bitDepth: $0.bitDepth
                ).needsBigTIFF
            }
            let writer = try TIFFWriter(url: temporary, bigTIFF: big)
            for page in pages {
                var layout = base ?? TIFFLayout(width: 0, height: 0, channels: 0, bitDepth: 0)
                layout.width = page.width
                layout.height = page.height
                layout.channels = page.channels
                if base == nil || layout.bitDepth != 1 { layout.bitDepth = page.bitDepth }
                try writer.beginPage(layout)
                try writer.write(page)
                try writer.endPage()
            }
            try writer.close()
        }
    }
}
