import Foundation
import TesseraEngine

/// How a mask file encodes class ids.
public enum MaskKind: Equatable, Sendable {
    /// Pixel value = class id (8- or 16-bit gray).
    case label
    /// 0/255 masks thresholded at 128: 0 -> class 0, 255 -> class 1.
    case binary
    /// Indexed PNG: palette index = class id.
    case palette
    /// RGB colours mapped to class ids.
    case colors([RGB: Int])

    /// The kind named `binary`, `label` or `palette` (colour maps are not named), nil otherwise.
    public init?(name: String) {
        switch name.lowercased() {
        case "binary": self = .binary
        case "label": self = .label
        case "palette": self = .palette
        default: return nil
        }
    }

    /// An 8-bit colour.
    public struct RGB: Hashable, Sendable {
        public let r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
            self.r = r
            self.g = g
            self.b = b
        }
    }
}

/// One image and its mask.
public struct SamplePair: Equatable, Sendable {
    public let image: URL
    public let mask: URL
    /// The shared file stem.
    public var name: String { image.deletingPathExtension().lastPathComponent }
}

/// A decoded image with one class id per pixel.
public struct LabelledSample: Sendable {
    public let pair: SamplePair
    public let image: Image
    /// Class ids, row by row (height x width).
    public let labels: [Int32]
}

/// Image/mask pairs from `images/` + `masks/` folders (matched by file stem) or a list file.
public struct SegmentationDataset: Sendable {
    public let pairs: [SamplePair]
    public let maskKind: MaskKind
    /// Declared number of classes, or nil to accept any id (see `foundClasses`).
    public let classes: Int?
    /// Channels every image is converted to on loading (`Image.converted(toChannels:file:)`), or nil to keep
    /// each file's own layout (training then refuses a data set that mixes layouts).
    public var channels: Int?

    /// Pairs every image in `images` with the mask of the same stem in `masks`.
    /// - Throws: an `FileError` naming the image whose mask is missing, or an empty folder.
    public init(images: URL, masks: URL, maskKind: MaskKind = .label, classes: Int? = nil) throws {
        func listing(_ dir: URL) throws -> [URL] {
            do {
                return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
                    .filter { ImageFormat.fileExtensions.contains($0.pathExtension.lowercased()) }
                    .sorted { $0.lastPathComponent < $1.lastPathComponent }
            } catch {
                throw FileError(
                    file: dir.path, reason: "cannot list folder: \((error as NSError).localizedDescription)")
            }
        }
        let imageFiles = try listing(images)
        guard !imageFiles.isEmpty else {
            throw FileError(file: images.path, reason: "no PNG or JPEG images in folder")
        }
        var maskByStem: [String: URL] = [:]
        for m in try listing(masks) {
            let stem = m.deletingPathExtension().lastPathComponent
            if let other = maskByStem[stem] {
                throw FileError(file: m.path, reason: "two masks share the stem '\(stem)' (also \(other.path))")
            }
            maskByStem[stem] = m
        }
        pairs = try imageFiles.map { image in
            let stem = image.deletingPathExtension().lastPathComponent
            guard let mask = maskByStem[stem] else {
                throw FileError(file: image.path, reason: "no mask named '\(stem).*' in \(masks.path)")
            }
            return SamplePair(image: image, mask: mask)
        }
        self.maskKind = maskKind
        self.classes = classes
    }

    /// Pairs listed one per line as `IMAGE MASK` (paths relative to the list file; `#` starts a comment).
    public init(listFile: URL, maskKind: MaskKind = .label, classes: Int? = nil) throws {
        let text: String
        do { text = try String(contentsOf: listFile, encoding: .utf8) } catch {
            throw FileError(
                file: listFile.path, reason: "cannot read list file: \((error as NSError).localizedDescription)")
        }
        let base = listFile.deletingLastPathComponent()
        var found: [SamplePair] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
            if fields.isEmpty { continue }
            guard fields.count == 2 else {
                throw FileError(
                    file: listFile.path, reason: "line \(number + 1): expected 'IMAGE MASK', got '\(line)'")
            }
            let resolve = { (s: Substring) in
                s.hasPrefix("/") ? URL(fileURLWithPath: String(s)) : base.appendingPathComponent(String(s))
            }
            found.append(SamplePair(image: resolve(fields[0]), mask: resolve(fields[1])))
        }
        guard !found.isEmpty else { throw FileError(file: listFile.path, reason: "list file names no pairs") }
        pairs = found
        self.maskKind = maskKind
        self.classes = classes
    }

    init(pairs: [SamplePair], maskKind: MaskKind, classes: Int?) {
        self.pairs = pairs
        self.maskKind = maskKind
        self.classes = classes
    }

    /// A seeded split: `validationFraction` of the pairs (at least one if any) go to validation.
    public func split(validationFraction: Double, seed: UInt64) -> (
        train: SegmentationDataset, validation: SegmentationDataset
    ) {
        var order = Array(pairs.indices)
        var g = RandomGenerator(seed: seed)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.nextInt(i + 1)) }
        let count = validationFraction <= 0 ? 0 : max(1, Int((Double(pairs.count) * validationFraction).rounded()))
        let validation = Set(order.prefix(min(count, pairs.count)))
        return (subset { !validation.contains($0) }, subset { validation.contains($0) })
    }

    /// A split by name: pairs whose stem is listed go to validation.
    public func split(validationNames: Set<String>) -> (train: SegmentationDataset, validation: SegmentationDataset) {
        (subset { !validationNames.contains(pairs[$0].name) }, subset { validationNames.contains(pairs[$0].name) })
    }

    /// Every `count`-th pair from `index` (one process's part of a validation set).
    public func shard(_ index: Int, of count: Int) -> SegmentationDataset {
        subset { $0 % max(1, count) == index }
    }

    private func subset(_ keep: (Int) -> Bool) -> SegmentationDataset {
        var part = SegmentationDataset(
            pairs: pairs.indices.filter(keep).map { pairs[$0] }, maskKind: maskKind, classes: classes)
        part.channels = channels
        return part
    }

    /// Decodes pair `index`: the image and its class ids.
    /// - Throws: an `FileError` naming the image and the mask when they disagree in size or a class id is out
    ///   of range, or naming the file that cannot be decoded.
    public func load(_ index: Int, options: ImageCodec.Options = ImageCodec.Options()) throws -> LabelledSample {
        try load(index, options: options) { _, _ in nil }
    }

    /// Decodes only the window that `window` picks from the pair's upright size (nil: the whole pair). Both
    /// headers are read first; rows below the window are not decoded (nor checked), so a crop costs less.
    public func load(
        _ index: Int, options: ImageCodec.Options = ImageCodec.Options(),
        window: (_ width: Int, _ height: Int) -> PixelWindow?
    ) throws -> LabelledSample {
        let pair = pairs[index]
        let decoder = MaskDecoder(kind: maskKind, classes: classes)
        let imageData = try ImageCodec.readFile(pair.image)
        let maskData = try ImageCodec.readFile(pair.mask)
        let imageSize = try ImageCodec.info(of: imageData, file: pair.image.path).uprightSize(options.applyOrientation)
        let maskSize: (width: Int, height: Int)
        do {
            maskSize = try ImageCodec.info(of: maskData, file: pair.mask.path).uprightSize(true)
        } catch let e as FileError {
            throw FileError(file: e.file, reason: "\(e.reason) (mask of \(pair.image.path))")
        }
        guard maskSize == imageSize else {
            throw FileError(
                file: pair.mask.path,
                reason: "mask is \(maskSize.width)x\(maskSize.height) but its image "
                    + "\(pair.image.path) is \(imageSize.width)x\(imageSize.height)")
        }
        let win = window(imageSize.width, imageSize.height)
        if let win,
            !(win.x >= 0 && win.y >= 0 && win.width > 0 && win.height > 0 && win.x + win.width <= imageSize.width
                && win.y + win.height <= imageSize.height)
        {
            throw FileError(
                file: pair.image.path,
                reason: "window \(win) is outside the \(imageSize.width)x\(imageSize.height) image")
        }
        var imageOptions = options, maskOptions = decoder.decodeOptions(options)
        imageOptions.rows = win.map { $0.y..<($0.y + $0.height) }
        maskOptions.rows = imageOptions.rows
        func windowed(_ image: Image) -> Image {
            guard let win else { return image }
            return image.cropped(x: win.x, y: 0, width: win.width, height: image.height)
        }
        var image = windowed(try ImageCodec.decode(imageData, file: pair.image.path, options: imageOptions))
        if let channels { image = try image.converted(toChannels: channels, file: pair.image.path) }
        let ids: [Int32]
        do {
            let mask = windowed(try ImageCodec.decode(maskData, file: pair.mask.path, options: maskOptions))
            ids = try decoder.labels(from: mask, file: pair.mask.path, origin: (win?.x ?? 0, win?.y ?? 0))
        } catch let e as FileError {
            throw FileError(file: e.file, reason: "\(e.reason) (mask of \(pair.image.path))")
        }
        return LabelledSample(pair: pair, image: image, labels: ids)
    }

    /// The largest class id + 1 over all masks (for datasets without a declared class count).
    public func foundClasses() throws -> Int {
        var top: Int32 = 0
        for pair in pairs {
            let ids = try MaskDecoder(kind: maskKind, classes: classes).labels(of: pair.mask).ids
            top = max(top, ids.max() ?? 0)
        }
        return Int(top) + 1
    }
}

/// Turns a mask file into class ids according to its kind.
public struct MaskDecoder: Sendable {
    public let kind: MaskKind
    public let classes: Int?

    public init(kind: MaskKind, classes: Int? = nil) {
        self.kind = kind
        self.classes = classes
    }

    /// How masks of this kind are decoded, from the caller's options (orientation always applied).
    func decodeOptions(_ options: ImageCodec.Options) -> ImageCodec.Options {
        var opt = options
        opt.rgba8 = false
        opt.gray = false
        opt.applyOrientation = true
        opt.paletteIndices = kind == .palette
        return opt
    }

    /// Decodes the mask at `url` into class ids.
    public func labels(of url: URL, options: ImageCodec.Options = ImageCodec.Options()) throws
        -> (width: Int, height: Int, ids: [Int32])
    {
        let mask = try ImageCodec.decode(url, options: decodeOptions(options))
        return (mask.width, mask.height, try labels(from: mask, file: url.path))
    }

    /// Class ids of a decoded mask; errors name `file` and pixel positions offset by `origin` (of a window).
    public func labels(from mask: Image, file: String, origin: (x: Int, y: Int) = (0, 0)) throws -> [Int32] {
        let n = mask.width * mask.height
        var ids = [Int32](repeating: 0, count: n)
        func position(_ p: Int) -> String { "(\(p % mask.width + origin.x), \(p / mask.width + origin.y))" }
        // First channel of every pixel through `map`, with one switch on the sample type rather than one per pixel.
        @inline(__always) func firstChannel(_ map: (Int32) -> Int32) {
            let ch = mask.channels
            ids.withUnsafeMutableBufferPointer { out in
                switch mask.samples {
                case .uint8(let v):
                    v.withUnsafeBufferPointer { b in for p in 0..<n { out[p] = map(Int32(b[p &* ch])) } }
                case .uint16(let v):
                    v.withUnsafeBufferPointer { b in for p in 0..<n { out[p] = map(Int32(b[p &* ch])) } }
                case .float32: break  // refused below
                }
            }
        }
        if case .float32 = mask.samples {
            throw FileError(file: file, reason: "a mask must have integer samples, this one has 32-bit floats")
        }
        switch kind {
        case .label, .palette:
            guard mask.channels <= 2 else {
                throw FileError(
                    file: file,
                    reason:
                        "a \(kind == .label ? "label" : "palette") mask must be single-channel, this one has \(mask.channels) channels"
                )
            }
            firstChannel { $0 }
        case .binary:
            let top: Int32 = mask.bitDepth == 16 ? 65535 : 255
            firstChannel { $0 &* 2 >= top ? 1 : 0 }
        case .colors(let map):
            guard mask.channels >= 3, case .uint8(let v) = mask.samples else {
                throw FileError(file: file, reason: "a colour mask must be 8-bit RGB")
            }
            let ch = mask.channels
            for p in 0..<n {
                let rgb = MaskKind.RGB(v[p * ch], v[p * ch + 1], v[p * ch + 2])
                guard let id = map[rgb] else {
                    throw FileError(
                        file: file,
                        reason: "colour (\(rgb.r), \(rgb.g), \(rgb.b)) at pixel "
                            + "\(position(p)) is not in the colour map")
                }
                ids[p] = Int32(id)
            }
        }
        if let classes, let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw FileError(
                file: file,
                reason: "class id \(ids[bad]) at pixel \(position(bad)) "
                    + "is outside the \(classes) declared classes")
        }
        return ids
    }
}
