import CImageCodecs
import Foundation
import TesseraEngine

/// File formats the codecs read and write.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case png, jpeg, tiff

    /// File name extensions of the format, lower case (the one list every folder listing uses).
    public var extensions: [String] {
        switch self {
        case .png: return ["png"]
        case .jpeg: return ["jpg", "jpeg"]
        case .tiff: return ["tif", "tiff"]
        }
    }

    /// Extensions of every image format the codecs read.
    public static let fileExtensions: Set<String> = Set(allCases.flatMap(\.extensions))

    /// The format a file's first bytes announce, if any.
    public static func sniff(_ data: Data) -> ImageFormat? {
        if data.count >= 8 && data.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.count >= 3 && data[data.startIndex] == 0xFF && data[data.startIndex + 1] == 0xD8 { return .jpeg }
        // "II*\0" / "MM\0*" (TIFF) and "II+\0" / "MM\0+" (BigTIFF).
        if data.count >= 4 {
            let head = [UInt8](data.prefix(4))
            if [[0x49, 0x49, 0x2A, 0], [0x4D, 0x4D, 0, 0x2A], [0x49, 0x49, 0x2B, 0], [0x4D, 0x4D, 0, 0x2B]].contains(
                head)
            {
                return .tiff
            }
        }
        return nil
    }

    /// The format a file name's extension asks for.
    public static func forExtension(of url: URL) -> ImageFormat? {
        let ext = url.pathExtension.lowercased()
        return allCases.first { $0.extensions.contains(ext) }
    }
}

/// What a file's header says, read without decoding pixels.
public struct ImageInfo: Equatable, Sendable {
    public let format: ImageFormat
    public let width: Int, height: Int
    /// Channels of the decoded image (tRNS counts as alpha).
    public let channels: Int
    /// Colour (or, for TIFF, measured) channels of the decoded image, alpha not counted: a PNG's 2 and 4
    /// channels carry alpha (`Image.colorChannels`); a TIFF's last channel only when its ExtraSamples say so.
    public var colorChannels: Int {
        format == .tiff ? channels - (lastIsAlpha ? 1 : 0) : Image.colorChannels(of: channels)
    }
    /// Bits per sample in the file.
    public let bitDepth: Int
    public let interlaced: Bool
    /// EXIF orientation (JPEG), 1 when absent.
    public let orientation: Int
    /// Images in the file (TIFF slices: pages or OME z/t planes), 1 for PNG and JPEG.
    public var slices = 1
    /// TIFF: the last channel is alpha (ExtraSamples).
    public var lastIsAlpha = false

    /// The facts of a TIFF's first image (`stack`), its samples stored with `storedBits` bits.
    public init(tiff stack: TIFFStack, storedBits: Int) {
        self.init(
            format: .tiff, width: stack.width, height: stack.height, channels: stack.channels, bitDepth: storedBits,
            interlaced: false, orientation: 1)
        slices = stack.slices.count
        lastIsAlpha = stack.lastIsAlpha
    }

    init(
        format: ImageFormat, width: Int, height: Int, channels: Int, bitDepth: Int, interlaced: Bool, orientation: Int
    ) {
        self.format = format
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.interlaced = interlaced
        self.orientation = orientation
    }

    /// Width and height once the orientation is applied (if `applied`).
    public func uprightSize(_ applied: Bool) -> (width: Int, height: Int) {
        applied && orientation >= 5 ? (height, width) : (width, height)
    }
}

/// PNG, JPEG and TIFF through libpng, libjpeg and libtiff.
public enum ImageCodec {
    /// Images with more pixels than this fail from the header, before any pixel buffer is allocated.
    public static let defaultMaxPixels = 1 << 28
    /// Images whose decoded samples would take more bytes than this fail from the header too: 2^28 pixels of
    /// 16-bit RGBA are 2 GiB, four times what the pixel limit alone suggests.
    public static let defaultMaxBytes = 1 << 30

    /// Decoding choices.
    public struct Options: Sendable {
        public var maxPixels: Int = ImageCodec.defaultMaxPixels
        /// Decoded sample bytes (after expansion) above this fail before any pixel buffer is allocated.
        public var maxBytes: Int = ImageCodec.defaultMaxBytes
        /// Expand everything to 8-bit RGBA (palette, gray, transparency and 16-bit included).
        public var rgba8 = false
        /// JPEG only: decode to a single gray channel.
        public var gray = false
        /// PNG only: an indexed image decodes to its palette indices (one 8-bit channel); others fail.
        public var paletteIndices = false
        /// Apply the EXIF orientation so the image is upright.
        public var applyOrientation = true
        /// Only these rows of the (upright) image, clamped to it. Where the file allows, rows below the window
        /// are neither decoded nor checked, so a random crop of a large image costs a fraction of its decode.
        public var rows: Range<Int>? = nil
        /// PNG only: read every row through libpng instead of the fast reader for 8-bit non-interlaced files
        /// (the two give the same pixels; this is the reference the fast reader is tested against).
        public var libpngRows = false
        /// TIFF only: how pages become images; the first image is decoded.
        public var tiffPages = TIFFPages.auto
        public init() {}
    }

    /// The bytes of `url`, mapped; an error names the file.
    public static func readFile(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw FileError(file: url.path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
    }

    /// Header facts of the file at `url`.
    public static func info(of url: URL) throws -> ImageInfo {
        try info(of: readFile(url), file: url.path)
    }

    /// Header facts of an in-memory file; `file` names it in errors.
    public static func info(of data: Data, file: String, tiffPages: TIFFPages = .auto) throws -> ImageInfo {
        guard let format = ImageFormat.sniff(data) else {
            throw FileError(file: file, reason: "not a PNG, JPEG or TIFF file")
        }
        if format == .tiff {
            let tiff = try TIFFFile(data: data, file: file)
            let stack = try TIFFStack(tiff, pages: tiffPages)
            return ImageInfo(tiff: stack, storedBits: try tiff.page(0).storedBits)
        }
        var raw = tc_image_info()
        var err = [CChar](repeating: 0, count: 512)
        let rc = data.withUnsafeBytes { buf -> Int32 in
            let p = buf.bindMemory(to: UInt8.self).baseAddress!
            return format == .png
                ? tc_png_info(p, buf.count, &raw, &err, err.count)
                : tc_jpeg_info(p, buf.count, &raw, &err, err.count)
        }
        guard rc == 0 else { throw FileError(file: file, reason: String(nulTerminated: err)) }
        return ImageInfo(
            format: format, width: Int(raw.width), height: Int(raw.height), channels: Int(raw.channels),
            bitDepth: Int(raw.source_bit_depth), interlaced: raw.interlaced != 0,
            orientation: Int(raw.orientation))
    }

    /// Decodes the file at `url`.
    public static func decode(_ url: URL, options: Options = Options()) throws -> Image {
        try decode(readFile(url), file: url.path, options: options)
    }

    /// Decodes an in-memory PNG or JPEG; `file` names it in errors.
    public static func decode(_ data: Data, file: String, options: Options = Options()) throws -> Image {
        guard let format = ImageFormat.sniff(data) else {
            throw FileError(file: file, reason: "not a PNG, JPEG or TIFF file")
        }
        if format == .tiff { return try decodeTIFF(data, file: file, options: options) }
        let window = options.rows.map { r in
            (max(0, min(r.lowerBound, Int(UInt32.max))), max(0, min(r.upperBound, Int(UInt32.max))))
        }
        if let window, window.0 >= window.1 {
            throw FileError(file: file, reason: "empty row window \(options.rows!)")
        }
        var opt = tc_decode_options(
            max_pixels: UInt64(max(0, options.maxPixels)),
            max_bytes: UInt64(max(0, options.maxBytes)), force_rgba8: options.rgba8 ? 1 : 0,
            force_gray: options.gray ? 1 : 0, palette_indices: options.paletteIndices ? 1 : 0,
            row_begin: UInt32(window?.0 ?? 0), row_end: UInt32(window?.1 ?? 0),
            raw_orientation: options.applyOrientation ? 0 : 1, libpng_rows: options.libpngRows ? 1 : 0)
        if options.paletteIndices && format != .png {
            throw FileError(file: file, reason: "palette masks must be indexed PNG, this is JPEG")
        }
        var out = tc_image()
        var err = [CChar](repeating: 0, count: 512)
        let rc = data.withUnsafeBytes { buf -> Int32 in
            let p = buf.bindMemory(to: UInt8.self).baseAddress!
            return format == .png
                ? tc_png_decode(p, buf.count, &opt, &out, &err, err.count)
                : tc_jpeg_decode(p, buf.count, &opt, &out, &err, err.count)
        }
        guard rc == 0 else { throw FileError(file: file, reason: String(nulTerminated: err)) }
        defer { tc_free(out.pixels) }
        let w = Int(out.info.width), h = Int(out.row_count), c = Int(out.info.channels)
        let n = w * h * c
        let samples: Image.Samples
        if out.info.bit_depth == 16 {
            let p = out.pixels.bindMemory(to: UInt16.self, capacity: n)
            samples = .uint16(Array(UnsafeBufferPointer(start: p, count: n)))
        } else {
            let p = out.pixels.bindMemory(to: UInt8.self, capacity: n)
            samples = .uint8(Array(UnsafeBufferPointer(start: p, count: n)))
        }
        var image = Image(width: w, height: h, channels: c, samples: samples)
        guard out.first_row == 0 && out.row_count == out.info.height else { return image }  // the window, as asked
        if options.applyOrientation { image = image.oriented(Int(out.info.orientation)) }
        if let window, window.0 > 0 || window.1 < image.height {
            guard window.0 < image.height else {
                throw FileError(
                    file: file, reason: "row window \(options.rows!) is outside the image's \(image.height) rows")
            }
            image = image.cropped(x: 0, y: window.0, width: image.width, height: min(window.1, image.height) - window.0)
        }
        return image
    }

    /// PNG bytes of `image`; with `palette` (RGB triples), an indexed PNG of its 8-bit single-channel indices.
    public static func encodePNG(_ image: Image, palette: [[UInt8]]? = nil, file: String = "<memory>") throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 512)
        var flatPalette: [UInt8]? = nil
        if let palette {
            guard image.channels == 1, image.bitDepth == 8, !palette.isEmpty, palette.count <= 256,
                palette.allSatisfy({ $0.count == 3 })
            else {
                throw FileError(
                    file: file, reason: "an indexed PNG needs 8-bit single-channel indices and 1-256 RGB colours")
            }
            if case .uint8(let v) = image.samples, let bad = v.first(where: { Int($0) >= palette.count }) {
                throw FileError(file: file, reason: "index \(bad) is outside the \(palette.count)-colour palette")
            }
            flatPalette = palette.flatMap { $0 }
        }
        let rc: Int32
        switch image.samples {
        case .uint8(let v):
            rc = v.withUnsafeBytes { px in
                withOptionalPointer(flatPalette) { pal in
                    tc_png_encode(
                        px.baseAddress, UInt32(image.width), UInt32(image.height), Int32(image.channels), 8,
                        pal, Int32(palette?.count ?? 0), &out, &size, &err, err.count)
                }
            }
        case .float32:
            throw FileError(file: file, reason: "PNG has no float samples; write float images as TIFF")
        case .uint16(let v):
            rc = v.withUnsafeBytes { px in
                tc_png_encode(
                    px.baseAddress, UInt32(image.width), UInt32(image.height), Int32(image.channels), 16,
                    nil, 0, &out, &size, &err, err.count)
            }
        }
        guard rc == 0, let out else { throw FileError(file: file, reason: String(nulTerminated: err)) }
        defer { tc_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Baseline JPEG bytes of an 8-bit gray or RGB image (RGBA drops its alpha).
    public static func encodeJPEG(_ image: Image, quality: Int = 90, file: String = "<memory>") throws -> Data {
        guard case .uint8(var v) = image.samples else {
            throw FileError(file: file, reason: "JPEG needs 8-bit samples; convert 16-bit images first")
        }
        var channels = image.channels
        if channels == 4 || channels == 2 {
            let keep = channels - 1
            v = (0..<(image.width * image.height)).flatMap { p in v[(p * channels)..<(p * channels + keep)] }
            channels = keep
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 512)
        let rc = v.withUnsafeBufferPointer { px in
            tc_jpeg_encode(
                px.baseAddress, UInt32(image.width), UInt32(image.height), Int32(channels), Int32(quality),
                &out, &size, &err, err.count)
        }
        guard rc == 0, let out else { throw FileError(file: file, reason: String(nulTerminated: err)) }
        defer { tc_free(out) }
        return Data(bytes: out, count: size)
    }

    /// Writes `image` as PNG or JPEG by the file extension, atomically (temporary file, then rename).
    /// The linked libpng's version and the libjpeg API version (62 = 6b, 80 = 8) the shims use.
    public static var libraryVersions: (png: String, jpeg: String) {
        (String(cString: tc_png_version()), String(tc_jpeg_version()))
    }

    public static func write(_ image: Image, to url: URL, quality: Int = 90, palette: [[UInt8]]? = nil) throws {
        let data: Data
        switch ImageFormat.forExtension(of: url) {
        case .png: data = try encodePNG(image, palette: palette, file: url.path)
        case .jpeg: data = try encodeJPEG(image, quality: quality, file: url.path)
        case .tiff:
            return try TIFFWriter.write([image], to: url)
        case nil:
            throw FileError(
                file: url.path, reason: "unknown image extension '.\(url.pathExtension)' (use .png, .jpg, .tif)")
        }
        do {
            try AtomicFile.write(data, to: url)
        } catch let e as FileError {
            throw e
        } catch {
            throw FileError(file: url.path, reason: "cannot write: \((error as NSError).localizedDescription)")
        }
    }

    /// The first image of a TIFF (`options.tiffPages`), or the rows of it `options.rows` asks for; the header's
    /// size is checked against `maxPixels` and `maxBytes` before any row is decoded.
    static func decodeTIFF(_ data: Data, file: String, options: Options) throws -> Image {
        if options.paletteIndices {
            throw FileError(file: file, reason: "palette masks must be indexed PNG, this is TIFF")
        }
        let tiff = try TIFFFile(data: data, file: file)
        let stack = try TIFFStack(tiff, pages: options.tiffPages)
        let (pixels, o1) = stack.width.multipliedReportingOverflow(by: stack.height)
        let (bytes, o2) = pixels.multipliedReportingOverflow(by: stack.channels * max(1, stack.bitDepth / 8))
        guard !o1, !o2, pixels <= options.maxPixels, bytes <= options.maxBytes else {
            throw FileError(
                file: file,
                reason: "a \(stack.width)x\(stack.height) image of \(stack.channels) channels is over the "
                    + "\(options.maxPixels)-pixel / \(options.maxBytes >> 20) MiB limit for whole-image decoding")
        }
        var rows = 0..<stack.height
        if let r = options.rows {
            rows = max(0, r.lowerBound)..<min(stack.height, r.upperBound)
            guard !rows.isEmpty else {
                throw FileError(file: file, reason: "row window \(r) is outside the image's \(stack.height) rows")
            }
        }
        var image = try stack.rows(rows, slice: 0, of: tiff)
        if options.rgba8 { image = try image.rgba8(file: file) }
        return image
    }

    private static func withOptionalPointer<R>(_ v: [UInt8]?, _ body: (UnsafePointer<UInt8>?) -> R) -> R {
        guard let v else { return body(nil) }
        return v.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
