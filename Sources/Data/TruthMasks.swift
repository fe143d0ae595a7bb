import Foundation
import TesseraEngine

/// Ground-truth masks found by an input's relative path under a folder (any image extension).
public struct TruthMasks: Sendable {
    public let root: URL
    public let kind: MaskKind
    public let classes: Int

    public init(root: URL, kind: MaskKind, classes: Int) {
        self.root = root
        self.kind = kind
        self.classes = classes
    }

    /// The image file under `root` with `relative`'s path and any image extension.
    public static func file(for relative: String, under root: URL) throws -> URL {
        let stem = (relative as NSString).deletingPathExtension
        let lower = ImageFormat.allCases.flatMap(\.extensions)  // png first, as before
        let extensions = lower + lower.map { $0.uppercased() }
        let candidates = extensions.map { root.appendingPathComponent(stem + "." + $0) }
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw FileError(
                file: root.appendingPathComponent(stem).path, reason: "no mask for \(relative) in \(root.path)")
        }
        return url
    }

    /// The mask for `relative` as a source read window by window (a TIFF mask of a whole-slide image is never
    /// decoded whole), checked against the image's size and slices.
    public func source(for relative: String, width: Int, height: Int, slices: Int) throws -> PixelSource {
        let url = try Self.file(for: relative, under: root)
        let mask = try PixelSource(url: url) { try ImageCodec.decode($0) }
        guard mask.width == width, mask.height == height, mask.slices == slices else {
            throw FileError(
                file: url.path,
                reason: "mask is \(mask.width)x\(mask.height) (\(mask.slices) slices) but the image is "
                    + "\(width)x\(height) (\(slices))")
        }
        return mask
    }

    /// Class ids of the mask for `relative`, checked against the image's size.
    public func labels(for relative: String, width: Int, height: Int) throws -> [Int32] {
        let url = try Self.file(for: relative, under: root)
        let (w, h, ids) = try MaskDecoder(kind: kind, classes: classes).labels(of: url)
        guard w == width && h == height else {
            throw FileError(file: url.path, reason: "mask is \(w)x\(h) but the image is \(width)x\(height)")
        }
        return ids
    }
}
