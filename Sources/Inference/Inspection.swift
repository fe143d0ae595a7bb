import Foundation
import TesseraData
import TesseraEngine

/// What `tessera inspect` reports about one file: an image's header, a safetensors file's contents, or why it
/// cannot be read.
public struct Inspection {
    /// What was found in the file.
    public enum Content {
        case image(ImageInfo)
        /// A TIFF: its first image and the layout of every page.
        case tiff(ImageInfo, [TIFFFile.Page], big: Bool)
        case safetensors(SafeTensorsFile)
    }

    public let path: String
    public let result: Result<Content, Error>

    /// Inspects every image and safetensors file under `paths` in order, calling `each` with every report; with
    /// `strict` it stops after the first that fails. Returns the reports and the number of files found.
    public static func inspect(
        _ paths: [String], recursive: Bool, strict: Bool, each: (Inspection) -> Void = { _ in }
    ) throws -> (reports: [Inspection], files: Int) {
        let inputs = try InputFiles(
            paths, extensions: ImageFormat.fileExtensions.union(["safetensors"]), recursive: recursive)
        var reports: [Inspection] = []
        for entry in inputs.entries {
            let report = Inspection(path: entry.url.path)
            reports.append(report)
            each(report)
            if strict && report.failed { break }
        }
        return (reports, inputs.entries.count)
    }

    public init(path: String) {
        self.path = path
        let url = URL(fileURLWithPath: path)
        result = Result {
            let head = try Inspection.firstBytes(of: url, count: 8)
            if ImageFormat.sniff(head) == .tiff { return try Inspection.tiff(url) }
            if ImageFormat.sniff(head) != nil || ImageFormat.forExtension(of: url) != nil {
                // Decode fully (and discard) so a damaged body is reported, not only a bad header.
                let info = try ImageCodec.info(of: url)
                _ = try ImageCodec.decode(url)
                return .image(info)
            }
            return .safetensors(try SafeTensorsFile(contentsOf: url))
        }
    }

    /// Every page of a TIFF read through, a block row at a time (a whole-slide image in the memory of one row of
    /// tiles), so a damaged strip or tile anywhere is reported.
    static func tiff(_ url: URL) throws -> Content {
        let file = try TIFFFile(url: url)
        let stack = try TIFFStack(file, pages: .auto)
        let pages = try (0..<file.pageCount).map { try file.page($0) }
        for (p, page) in pages.enumerated() {
            for y in stride(from: 0, to: page.height, by: page.blockHeight) {
                _ = try file.rows(y..<min(page.height, y + page.blockHeight), page: p)
            }
        }
        return .tiff(ImageInfo(tiff: stack, storedBits: pages[0].storedBits), pages, big: file.isBigTIFF)
    }

    static func firstBytes(of url: URL, count: Int) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw FileError(file: url.path, reason: "cannot open (missing or unreadable)")
        }
        defer { try? handle.close() }
        return handle.readData(ofLength: count)
    }

    /// The reason alone when the error already names the file.
    static func reason(_ error: Error) -> String {
        if let e = error as? FileError { return e.reason }
        return "\(error)"
    }

    public var failed: Bool { if case .failure = result { return true } else { return false } }

    /// Human-readable lines.
    public var lines: [String] {
        switch result {
        case .failure(let error):
            return ["\(path): error: \(Inspection.reason(error))"]
        case .success(.image(let i)):
            return [
                "\(path): \(i.format.rawValue), \(i.width)x\(i.height), \(i.channels) channels, \(i.bitDepth)-bit"
                    + (i.interlaced ? ", \(i.format == .png ? "interlaced" : "progressive")" : "")
                    + (i.orientation != 1 ? ", EXIF orientation \(i.orientation)" : "")
            ]
        case .success(.tiff(let i, let pages, let big)):
            var out = [
                "\(path): \(big ? "BigTIFF" : "tiff"), \(i.width)x\(i.height), \(i.channels) channels, "
                    + "\(i.bitDepth)-bit, \(i.slices) slice\(i.slices == 1 ? "" : "s"), \(pages.count) page\(pages.count == 1 ? "" : "s")"
            ]
            for (k, p) in pages.enumerated() {
                out.append(
                    "  page \(k + 1): \(p.width)x\(p.height), \(p.channels) channels, \(p.storedBits)-bit, "
                        + "\(p.tiled ? "tiles \(p.blockWidth)x\(p.blockHeight)" : "strips of \(p.blockHeight) rows"), "
                        + "\(TIFFCompression.name(p.compression))\(p.planar ? ", planar" : "")")
            }
            return out
        case .success(.safetensors(let file)):
            var out = ["\(path): safetensors, \(file.entries.count) tensors"]
            for (k, v) in file.metadata.sorted(by: { $0.key < $1.key }) {
                out.append("  metadata \(k) = \(v.count > 120 ? String(v.prefix(117)) + "..." : v)")
            }
            for e in file.entries { out.append("  \(e.name)  \(e.dtype.rawValue)  \(e.shape)") }
            return out
        }
    }

    /// A JSON-ready dictionary.
    public var json: [String: Any] {
        switch result {
        case .failure(let error):
            return ["file": path, "error": Inspection.reason(error)]
        case .success(.image(let i)):
            return [
                "file": path, "format": i.format.rawValue, "width": i.width, "height": i.height,
                "channels": i.channels, "bit_depth": i.bitDepth, "interlaced": i.interlaced,
                "orientation": i.orientation
            ]
        case .success(.tiff(let i, let pages, let big)):
            return [
                "file": path, "format": "tiff", "bigtiff": big, "width": i.width, "height": i.height,
                "channels": i.channels, "bit_depth": i.bitDepth, "slices": i.slices,
                "pages": pages.map {
                    [
                        "width": $0.width, "height": $0.height, "channels": $0.channels, "bit_depth": $0.storedBits,
                        "tiled": $0.tiled, "block_width": $0.blockWidth, "block_height": $0.blockHeight,
                        "compression": TIFFCompression.name($0.compression), "planar": $0.planar
                    ] as [String: Any]
                }
            ]
        case .success(.safetensors(let file)):
            return [
                "file": path, "format": "safetensors", "metadata": file.metadata,
                "tensors": file.entries.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape] }
            ]
        }
    }
}
