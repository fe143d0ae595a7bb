import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraObjects
import TesseraSettings

/// One image's line in the explain report.
public struct ExplainRecord: BatchRecord {
    public var path: String
    public var status: BatchStatus
    public var width = 0, height = 0
    public var seconds: Double = 0
    public var layer: String?
    public var classIndex: Int?
    public var className: String?
    /// The target's value (a class logit, or the sum of class logits over the region).
    public var score: Double?
    /// Region pixels of a segmentation target.
    public var regionPixels: Int?
    /// Where the heatmap peaks (mean position of its maxima), image pixels.
    public var peakX: Double?, peakY: Double?
    /// The map was zero everywhere (every weighted activation negative): the heatmap is all zeros.
    public var zeroMap = false
    /// With ground truth: the heatmap's mass on the class's true pixels dilated by the band, and the share of the
    /// image that area is (what a uniform map would score).
    public var massInTruth: Double?
    public var truthArea: Double?
    /// Seconds the map took (the method alone; `seconds` also counts decoding, faithfulness and writing).
    public var mapSeconds: Double?
    /// Faithfulness scores of the map (`--metrics`), by metric name, and the same scores of a random map.
    public var faithfulness: [String: Double]?
    public var randomFaithfulness: [String: Double]?
    /// LIME: the image's superpixels, the surrogate's weighted R^2, and the best superpixels with their weights.
    public var superpixels: Int?
    public var surrogateR2: Double?
    public var topSuperpixels: [Superpixel]?
    public var error: String?

    /// A superpixel of LIME's map: its id in `superpixels/` and its weight.
    public struct Superpixel: Codable, Sendable, Equatable {
        public var id: Int
        public var weight: Double
    }

    public init(path: String, status: BatchStatus) {
        self.path = path
        self.status = status
    }

    /// `report.json` spells keys as `report.csv` does (snake_case).
    enum CodingKeys: String, CodingKey {
        case path, status, width, height, seconds, layer, score, error
        case classIndex = "class", className = "class_name", regionPixels = "region_pixels", peakX = "peak_x"
        case peakY = "peak_y", zeroMap = "zero_map", massInTruth = "mass_in_truth", truthArea = "truth_area"
        case mapSeconds = "map_seconds", faithfulness, randomFaithfulness = "random_faithfulness"
        case superpixels, surrogateR2 = "surrogate_r2", topSuperpixels = "top_superpixels"
    }
}

/// Explains a list of images with a model: attribution heatmaps, overlays and raw maps written atomically and
/// skipped when complete, errors per image, `report.csv` / `report.json` (shared with `tessera segment`).
public final class ExplainRun {
    public let model: ExplainModel
    public let options: ExplainOptions
    public let outDirectory: URL
    /// The model file and settings the outputs are made with (`provenance.json`).
    public let provenance: OutputProvenance
    /// Where messages and progress go.
    public var console = Console()
    let cam: GradCAM

    public init(model url: URL, options: ExplainOptions, out: URL) throws {
        try options.validate()
        model = try ExplainModel.load(url, mean: options.mean, std: options.std)
        self.options = options
        outDirectory = out
        cam = GradCAM(
            method: options.method, layer: options.layer ?? model.defaultLayer, patch: options.patch,
            stride: options.stride)
        if options.method.usesLayer { _ = try cam.layerModule(in: model.module) }
        if let c = options.targetClass { _ = try model.classIndex(c) }
        if options.tile != nil && model.segmenter == nil {
            throw OptionError(option: "tile", reason: "explains segmentation models by tiles; this is a classifier")
        }
        func text<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        provenance = try OutputProvenance(
            command: "explain", model: url,
            settings: [
                "method": options.method.rawValue, "layer": cam.layer, "class": text(options.targetClass),
                "target_mask": text(options.targetMask?.path),
                "box": text(options.box.map { "\($0.x),\($0.y),\($0.width),\($0.height)" }),
                "object": text(options.object.map { "\($0)" }),
                "colormap": options.colormap.rawValue, "alpha": "\(options.alpha)",
                "outputs": options.outputs.map(\.rawValue).sorted().joined(separator: ","),
                "raw_format": options.rawFormat.rawValue,
                "overlay_format": options.overlayFormat.rawValue, "patch": text(options.patch),
                "stride": text(options.stride),
                "mean": text(options.mean), "std": text(options.std)
            ].merging(options.metrics.isEmpty ? [:] : ["metrics": Self.names(options.metrics)]) { a, _ in a }
                .merging(options.method == .lime ? Self.limeSettings(options) : [:]) { a, _ in a }
                .merging(options.tile.map { ["tile": "\($0)", "overlap": "\(options.overlap)"] } ?? [:]) { a, _ in a })
    }

    var settings: BatchSettings {
        BatchSettings(out: outDirectory, policy: options, provenance: provenance, console: console)
    }

    /// Output file of `kind` for an input at `relative` path.
    public func outputURL(_ kind: ExplainOutput, relative: String) -> URL {
        let stem = (relative as NSString).deletingPathExtension
        if options.tile != nil {
            // Tiled explanations stream into tiled TIFFs (heatmap and overlay RGB, raw float32 in [0, 1]).
            return outDirectory.appendingPathComponent("\(kind.rawValue)/" + stem + ".tif")
        }
        switch kind {
        case .heatmap: return outDirectory.appendingPathComponent("heatmap/" + stem + ".png")
        case .overlay:
            return outDirectory.appendingPathComponent("overlay/" + stem + "." + options.overlayFormat.fileExtension)
        case .raw: return outDirectory.appendingPathComponent("raw/" + stem + "." + options.rawFormat.rawValue)
        }
    }

    /// The faithfulness scores of an input (`--metrics`), kept so a resumed run reports them without recomputing.
    func scoresURL(relative: String) -> URL {
        outDirectory.appendingPathComponent("faithfulness/" + (relative as NSString).deletingPathExtension + ".json")
    }

    /// Every file the requested outputs make for one input.
    func outputFiles(relative: String) -> [URL] {
        options.outputs.sorted { $0.rawValue < $1.rawValue }.map { outputURL($0, relative: relative) }
            + (options.metrics.isEmpty ? [] : [scoresURL(relative: relative)])
            + (options.method == .lime ? [superpixelsURL(relative: relative)] : [])
    }

    /// The settings LIME's outputs depend on.
    static func limeSettings(_ o: ExplainOptions) -> [String: String] {
        [
            "segments": "\(o.segments)", "compactness": "\(o.compactness)", "fill": o.fill.rawValue,
            "samples": "\(o.samples)", "seed": "\(o.seed)"
        ]
    }

    /// LIME's superpixels of an input: a 16-bit label image (ids as the report's `top_superpixels` give them).
    func superpixelsURL(relative: String) -> URL {
        outDirectory.appendingPathComponent("superpixels/" + (relative as NSString).deletingPathExtension + ".png")
    }

    /// Names of a closed set in declaration order, comma-separated.
    static func names<E: CaseIterable & RawRepresentable & Hashable>(_ set: Set<E>) -> String
    where E.RawValue == String {
        E.allCases.filter { set.contains($0) }.map(\.rawValue).joined(separator: ",")
    }

    /// Whether records carry a random map's scores too (an `ExplainComparison` scores the random map once).
    var scoresRandomMap = true

    /// The summary of a run.
    public struct Summary {
        public let records: [ExplainRecord]
        public let seconds: Double
        public var failed: Int { BatchCounts(records).failed }
        /// Mean mass on the truth band over the images that have it.
        public var meanMassInTruth: Double? { Summary.meanMass(records) }

        /// Each faithfulness score's mean over the images that have it (of the random map with `random`).
        public func meanScores(random: Bool = false) -> [String: Double] { Summary.meanScores(records, random: random) }

        static func meanScores(_ records: [ExplainRecord], random: Bool) -> [String: Double] {
            var sums = [String: (Double, Int)]()
            for r in records {
                for (k, v) in (random ? r.randomFaithfulness : r.faithfulness) ?? [:] {
                    sums[k] = ((sums[k]?.0 ?? 0) + v, (sums[k]?.1 ?? 0) + 1)
                }
            }
            return sums.mapValues { $0.0 / Double($0.1) }
        }

        static func meanMass(_ records: [ExplainRecord]) -> Double? {
            let v = records.compactMap(\.massInTruth)
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
    }

    /// Explains `inputs` (files, folders, globs) and writes the reports.
    public func run(inputs: [String]) throws -> Summary {
        let channels = model.inChannels
        let runner = ImageBatchRunner<ExplainRecord>(settings: settings)
        func existing(_ entry: InputFiles.Entry) throws -> ExplainRecord {
            var record = ExplainRecord(path: entry.relativePath, status: .existing)
            // The input's header gives the size whatever the outputs are (a raw `.npy` has no image header).
            (record.width, record.height) = try ImageCodec.info(of: entry.url).uprightSize(true)
            if !options.metrics.isEmpty { try readScores(into: &record) }
            return record
        }
        if options.tile != nil {
            let (records, seconds) = try runner.run(
                inputs: inputs,
                decode: { url in try PixelSource(url: url) { try ModelInput.decode($0, channels: channels) } },
                outputs: outputFiles(relative:),
                process: { source, entry in try explainTiled(source, relative: entry.relativePath) },
                existing: existing, report: writeReports)
            return Summary(records: records, seconds: seconds)
        }
        let size = model.inputSize
        let (records, seconds) = try runner.run(
            inputs: inputs,
            decode: { url in
                let image = try ModelInput.decode(url, channels: channels)
                return size.map { image.classifierView(size: $0) } ?? image
            },
            outputs: outputFiles(relative:),
            process: { image, entry in try explain(image, relative: entry.relativePath) },
            existing: existing,
            report: writeReports)
        let summary = Summary(records: records, seconds: seconds)
        if let m = summary.meanMassInTruth {
            console.logger.info("\(String(format: "mean share of the map on the truth band: %.4f", m))")
        }
        let scores = summary.meanScores(), random = summary.meanScores(random: true)
        for m in FaithfulnessMetric.allCases where scores[m.rawValue] != nil {
            let line = String(
                format: "mean %@: %.4f (random map: %@; %@ is better)", m.rawValue, scores[m.rawValue] ?? 0,
                random[m.rawValue].map { String(format: "%.4f", $0) } ?? "not scored",
                m.higherIsBetter ? "higher" : "lower")
            console.logger.info("\(line)")
        }
        return summary
    }

    /// Explains one decoded image and writes its outputs.
    func explain(_ image: Image, relative: String) throws -> ExplainRecord {
        let w = image.width, h = image.height
        guard w * h <= options.maxPixels else {
            throw FileError(
                file: relative,
                reason: "image is \(w)x\(h); explain runs a whole image at once and takes "
                    + "at most \(options.maxPixels) pixels (--max-pixels)")
        }
        var record = ExplainRecord(path: relative, status: .done)
        (record.width, record.height) = (w, h)
        record.layer = options.method.usesLayer ? cam.layer : nil
        let planes = ModelInput.planes(of: image, mean: model.mean, std: model.std)
        let input: Tensor, crop: PixelWindow, target: CAMTarget
        if let network = model.segmenter {
            (input, crop, target) = try segmentationTarget(network, planes: planes, image: image, relative: relative)
            if case .region(_, let region) = target {
                record.regionPixels = region.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
            }
        } else {
            input = Tensor(planes, shape: [1, image.channels, h, w])
            crop = PixelWindow(x: 0, y: 0, width: w, height: h)
            let c =
                try options.targetClass.map(model.classIndex)
                ?? Int(withNoGrad { model.module(input) }.argmax(axis: 1).scalars[0])
            target = .classLogit(c)
        }
        let started = Date()
        let result: CAMResult, signed: [Float]
        if options.method == .lime {
            (result, signed) = try lime(image, planes: planes, input: input, target: target, record: &record)
        } else {
            result = try cam.explain(model: model.module, input: input, target: target, crop: crop)
            signed = result.heatmap
        }
        record.mapSeconds = Date().timeIntervalSince(started)
        record.classIndex = target.classIndex
        record.className = model.classNames[target.classIndex]
        record.score = Double(result.score)
        record.zeroMap = result.isZero
        if result.isZero {
            console.logger.warning(
                "\(relative): the \(options.method.rawValue) map of class \(target.classIndex) is zero everywhere (every weighted activation is negative); its heatmap is all zeros"
            )
        }
        let peak = Self.peak(result.heatmap, width: w)
        (record.peakX, record.peakY) = (peak.x, peak.y)
        if let root = options.masks {
            let truth = try TruthMasks(
                root: root, kind: model.maskKind, classes: model.classes
            )
            .labels(for: relative, width: w, height: h)
            let band = Self.dilated(truth.map { Int($0) == target.classIndex }, width: w, height: h, by: options.band)
            let total = result.heatmap.reduce(0, +)
            let inside = zip(result.heatmap, band).reduce(Float(0)) { $0 + ($1.1 ? $1.0 : 0) }
            record.massInTruth = total > 0 ? Double(inside / total) : 0
            record.truthArea = Double(band.filter { $0 }.count) / Double(w * h)
        }
        if !options.metrics.isEmpty {
            try score(signed, record: &record, input: input, crop: crop, target: target)
        }
        try write(result.heatmap, raw: signed, image: image, relative: relative)
        return record
    }

    /// The requested faithfulness scores of `map`, and of a random map (seeded by the input's path), written to
    /// the input's scores file.
    func score(_ map: [Float], record: inout ExplainRecord, input: Tensor, crop: PixelWindow, target: CAMTarget)
        throws
    {
        var f = Faithfulness()
        // About a million input pixels per forward pass (16 at 256 x 256, 4 at 512 x 512).
        f.batch = max(1, min(16, (1 << 20) / max(1, input.shape[2] * input.shape[3])))
        let seed = Self.seed(record.path)
        f.road.seed = seed
        let metrics = FaithfulnessMetric.allCases.filter(options.metrics.contains)
        func scores(_ m: [Float]) -> [String: Double] {
            Dictionary(
                uniqueKeysWithValues: metrics.map {
                    ($0.rawValue, f.score($0, map: m, crop: crop, model: model.module, input: input, target: target))
                })
        }
        record.faithfulness = scores(map)
        if scoresRandomMap {
            var g = RandomGenerator(seed: seed ^ 0x5EED)
            record.randomFaithfulness = scores(map.map { _ in g.nextFloat() })
        }
        let saved = SavedScores(
            mapSeconds: record.mapSeconds, faithfulness: record.faithfulness,
            randomFaithfulness: record.randomFaithfulness)
        let url = scoresURL(relative: record.path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(try JSONEncoder.pretty.encode(saved), to: url)
    }

    /// The scores file's content.
    struct SavedScores: Codable {
        var mapSeconds: Double?
        var faithfulness: [String: Double]?
        var randomFaithfulness: [String: Double]?
    }

    /// An existing input's scores, read back for the report.
    func readScores(into record: inout ExplainRecord) throws {
        let url = scoresURL(relative: record.path)
        guard let saved = try? JSONDecoder().decode(SavedScores.self, from: Data(contentsOf: url)) else {
            throw FileError(file: url.path, reason: "unreadable faithfulness scores (delete it to recompute)")
        }
        record.mapSeconds = saved.mapSeconds
        record.faithfulness = saved.faithfulness
        record.randomFaithfulness = saved.randomFaithfulness
    }

    /// A seed from an input's relative path (FNV-1a), the same on every run and machine.
    static func seed(_ path: String) -> UInt64 {
        path.utf8.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// The input window, the image inside it, and the region target of a segmenter. The whole image runs in one
    /// window mirrored outward to a size the network takes, as `segment` does when a tile covers the image.
    func segmentationTarget(
        _ network: any SegmentationNetwork, planes: [Float], image: Image,
        relative: String
    ) throws -> (Tensor, PixelWindow, CAMTarget) {
        let w = image.width, h = image.height
        let (input, py, px) = TiledInference.wholeImageWindow(
            planes, width: w, height: h, channels: image.channels,
            model: network)
        let crop = PixelWindow(x: -px.inputStart[0], y: -py.inputStart[0], width: w, height: h)
        // Output pixel (oy, ox) is image pixel (oy + oy0, ox + ox0).
        let oh = py.outputSize, ow = px.outputSize, oy0 = py.outputStart(0), ox0 = px.outputStart(0)
        var inImage = [Bool](repeating: false, count: oh * ow)
        for oy in 0..<oh where (0..<h).contains(oy + oy0) {
            for ox in 0..<ow where (0..<w).contains(ox + ox0) { inImage[oy * ow + ox] = true }
        }
        let predicted: [Int] = withNoGrad {
            network.eval()
            return network(input).argmax(axis: 1).scalars.map { Int($0) }
        }
        if let object = options.object {
            let region = try objectRegion(
                object, predicted: predicted, inImage: inImage, output: (ow, oh, ox0, oy0), image: (w, h),
                relative: relative)
            var counts = [Int](repeating: 0, count: model.classes)
            for i in region.indices where region[i] != 0 { counts[predicted[i]] += 1 }
            let c = try options.targetClass.map(model.classIndex) ?? counts.indices.max { counts[$0] < counts[$1] } ?? 0
            return (input, crop, .region(class: c, region: region))
        }
        let classIndex: Int
        if let c = options.targetClass {
            classIndex = try model.classIndex(c)
        } else {
            var counts = [Int](repeating: 0, count: model.classes)
            for i in predicted.indices where inImage[i] { counts[predicted[i]] += 1 }
            let candidates = model.classes > 1 ? Array(1..<model.classes) : [0]
            classIndex = candidates.max { counts[$0] < counts[$1] } ?? 0
        }
        var region = [Float](repeating: 0, count: oh * ow)
        if let box = options.box {
            guard box.x + box.width <= w, box.y + box.height <= h else {
                throw FileError(
                    file: relative,
                    reason: "the box \(box.x),\(box.y),\(box.width),\(box.height) reaches outside the \(w)x\(h) image")
            }
            for oy in 0..<oh {
                for ox in 0..<ow where inImage[oy * ow + ox] {
                    let y = oy + oy0, x = ox + ox0
                    if y >= box.y && y < box.y + box.height && x >= box.x && x < box.x + box.width {
                        region[oy * ow + ox] = 1
                    }
                }
            }
        } else if let maskURL = try regionMaskURL(for: relative) {
            let mask = try ImageCodec.decode(
                maskURL,
                options: {
                    var o = ImageCodec.Options(); o.gray = true; return o
                }())
            guard mask.width == w && mask.height == h else {
                throw FileError(
                    file: maskURL.path, reason: "target mask is \(mask.width)x\(mask.height) but the image is \(w)x\(h)"
                )
            }
            for oy in 0..<oh {
                for ox in 0..<ow where inImage[oy * ow + ox] && mask.sample(x: ox + ox0, y: oy + oy0, channel: 0) != 0 {
                    region[oy * ow + ox] = 1
                }
            }
        } else {
            for i in region.indices where inImage[i] && predicted[i] == classIndex { region[i] = 1 }
        }
        guard region.contains(where: { $0 != 0 }) else {
            throw CAMError(
                reason: "\(relative): the target region of class \(classIndex) ('\(model.classNames[classIndex])') "
                    + "is empty (no pixel predicted as it); give --target-mask or --box")
        }
        return (input, crop, .region(class: classIndex, region: region))
    }

    /// The pixels of object `id` in output coordinates: from the target mask (a label image), or among the
    /// connected components of the predicted classes.
    func objectRegion(
        _ id: Int, predicted: [Int], inImage: [Bool], output: (w: Int, h: Int, x0: Int, y0: Int),
        image: (w: Int, h: Int), relative: String
    ) throws -> [Float] {
        let (ow, oh, ox0, oy0) = output, (w, h) = image
        var ids = [UInt32](repeating: 0, count: w * h)
        let source: String
        if let maskURL = try regionMaskURL(for: relative) {
            let mask = try ImageCodec.decode(maskURL)
            guard mask.width == w && mask.height == h else {
                throw FileError(
                    file: maskURL.path, reason: "target mask is \(mask.width)x\(mask.height) but the image is \(w)x\(h)"
                )
            }
            for i in ids.indices { ids[i] = UInt32(clamping: mask.sample(x: i % w, y: i / w, channel: 0)) }
            source = maskURL.path
        } else {
            var classes = [UInt16](repeating: 0, count: w * h)
            for oy in 0..<oh {
                for ox in 0..<ow where inImage[oy * ow + ox] {
                    classes[(oy + oy0) * w + ox + ox0] = UInt16(clamping: predicted[oy * ow + ox])
                }
            }
            ids = Instances(mask: classes, width: w, height: h, settings: InstanceSettings()).ids
            source = "the prediction's connected components"
        }
        var region = [Float](repeating: 0, count: oh * ow)
        for oy in 0..<oh {
            for ox in 0..<ow where inImage[oy * ow + ox] && ids[(oy + oy0) * w + ox + ox0] == UInt32(id) {
                region[oy * ow + ox] = 1
            }
        }
        guard region.contains(where: { $0 != 0 }) else {
            throw FileError(
                file: relative, reason: "no object \(id) in \(source) (it has \(ids.max() ?? 0))")
        }
        return region
    }

    /// The target mask for an input: the file given, or the same relative path under the folder given.
    func regionMaskURL(for relative: String) throws -> URL? {
        guard let m = options.targetMask else { return nil }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: m.path, isDirectory: &isFolder) else {
            throw FileError(file: m.path, reason: "no such target mask")
        }
        return isFolder.boolValue ? try TruthMasks.file(for: relative, under: m) : m
    }

    /// LIME's map of one image: the surrogate's weight of each pixel's superpixel (signed, for `.npy` and the
    /// scores), its positive part scaled to [0, 1] for the heatmap; the superpixels written to `superpixels/`.
    func lime(_ image: Image, planes: [Float], input: Tensor, target: CAMTarget, record: inout ExplainRecord)
        throws -> (CAMResult, [Float])
    {
        let w = image.width, h = image.height, c = image.channels
        var lime = LIME(
            segments: options.segments, compactness: options.compactness, samples: options.samples,
            fill: options.fill, seed: Self.seed(record.path) ^ UInt64(options.seed))
        lime.batch = max(1, min(16, (1 << 20) / max(1, input.shape[2] * input.shape[3])))
        let window: ([Float]) -> Tensor
        if let network = model.segmenter {
            window = { TiledInference.wholeImageWindow($0, width: w, height: h, channels: c, model: network).0 }
        } else {
            window = { Tensor($0, shape: [1, c, h, w]) }
        }
        let wasTraining = model.module.isTraining
        model.module.eval()
        defer { model.module.train(wasTraining) }
        let r = lime.explain(
            planes: planes, pixels: AugmentationSample.planes(of: image), channels: c, width: w, height: h,
            model: model.module, target: target, window: window)
        record.superpixels = r.surrogate.weights.count
        record.surrogateR2 = r.surrogate.r2
        record.topSuperpixels = r.surrogate.weights.indices.sorted {
            r.surrogate.weights[$0] != r.surrogate.weights[$1]
                ? r.surrogate.weights[$0] > r.surrogate.weights[$1] : $0 < $1
        }
        .prefix(options.topK).map { ExplainRecord.Superpixel(id: $0, weight: r.surrogate.weights[$0]) }
        let url = superpixelsURL(relative: record.path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageCodec.write(
            Image(width: w, height: h, channels: 1, samples: .uint16(r.labels.map { UInt16(clamping: $0) })), to: url)
        let top = r.map.max() ?? 0
        let heat = top > 0 ? r.map.map { max(0, $0) / top } : [Float](repeating: 0, count: r.map.count)
        let result = CAMResult(
            weights: r.surrogate.weights.map(Float.init), cam: Tensor(r.map, shape: [h, w]), heatmap: heat, width: w,
            height: h, score: Float(r.score), isZero: top <= 0)
        return (result, r.map)
    }

    func write(_ heat: [Float], raw: [Float], image: Image, relative: String) throws {
        let w = image.width, h = image.height
        for kind in options.outputs.sorted(by: { $0.rawValue < $1.rawValue }) {
            let url = outputURL(kind, relative: relative)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            switch kind {
            case .heatmap: try ImageCodec.write(options.colormap.render(heat, width: w, height: h), to: url)
            case .overlay:
                try ImageCodec.write(
                    Overlay.heatmap(heat, over: image, colormap: options.colormap, alpha: options.alpha),
                    to: url, quality: 90)
            case .raw where options.rawFormat == .npy:
                try AtomicFile.write(NPYFile.encode(raw, shape: [h, w]), to: url)
            case .raw:
                let samples = heat.map { UInt16(max(0, min(1, $0)) * 65535 + 0.5) }
                try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: .uint16(samples)), to: url)
            }
        }
    }

    /// The mean position of the heatmap's maxima (a bilinear upsampling has plateaus at its borders).
    public static func peak(_ heat: [Float], width: Int) -> (x: Double, y: Double) {
        guard let top = heat.max(), top > 0 else { return (-1, -1) }
        var sx = 0.0, sy = 0.0, n = 0.0
        for (i, v) in heat.enumerated() where v >= top - 1e-6 {
            sx += Double(i % width)
            sy += Double(i / width)
            n += 1
        }
        return (sx / n, sy / n)
    }

    /// `mask` grown by `radius` pixels (chessboard distance).
    public static func dilated(_ mask: [Bool], width: Int, height: Int, by radius: Int) -> [Bool] {
        guard radius > 0 else { return mask }
        // Separable: rows, then columns.
        var rows = [Bool](repeating: false, count: mask.count)
        for y in 0..<height {
            for x in 0..<width where mask[y * width + x] {
                for d in max(0, x - radius)...min(width - 1, x + radius) { rows[y * width + d] = true }
            }
        }
        var out = [Bool](repeating: false, count: mask.count)
        for y in 0..<height {
            for x in 0..<width where rows[y * width + x] {
                for d in max(0, y - radius)...min(height - 1, y + radius) { out[d * width + x] = true }
            }
        }
        return out
    }

    func writeReports(_ records: [ExplainRecord], seconds: Double) throws {
        func f(_ v: Double?, _ format: String = "%.6f") -> String { v.map { String(format: format, $0) } ?? "" }
        let columns: [(name: String, value: (ExplainRecord) -> String)] = [
            ("width", { "\($0.width)" }), ("height", { "\($0.height)" }), ("layer", { $0.layer ?? "" }),
            ("class", { $0.classIndex.map(String.init) ?? "" }),
            ("class_name", { BatchReport<ExplainRecord>.csvField($0.className ?? "") }),
            ("score", { f($0.score) }), ("region_pixels", { $0.regionPixels.map(String.init) ?? "" }),
            ("peak_x", { f($0.peakX, "%.1f") }), ("peak_y", { f($0.peakY, "%.1f") }),
            ("zero_map", { $0.zeroMap ? "1" : "0" }),
            ("mass_in_truth", { f($0.massInTruth) }), ("truth_area", { f($0.truthArea) }),
            ("map_seconds", { f($0.mapSeconds, "%.4f") })
        ]
        let lime: [(name: String, value: (ExplainRecord) -> String)] =
            options.method != .lime
            ? []
            : [
                ("superpixels", { $0.superpixels.map(String.init) ?? "" }), ("surrogate_r2", { f($0.surrogateR2) }),
                (
                    "top_superpixels",
                    { r in
                        (r.topSuperpixels ?? []).map { "\($0.id):" + String(format: "%.6g", $0.weight) }.joined(
                            separator: " ")
                    }
                )
            ]
        let metrics = FaithfulnessMetric.allCases.filter(options.metrics.contains).map(\.rawValue)
        let scored: [(name: String, value: (ExplainRecord) -> String)] =
            metrics.map { m in (m, { f($0.faithfulness?[m]) }) }
            + (scoresRandomMap ? metrics.map { m in ("random_" + m, { f($0.randomFaithfulness?[m]) }) } : [])
        struct Run: Encodable {
            let method: String
            let layer: String?
            let classes: [String]
            let meanMassInTruth: Double?
            let meanFaithfulness: [String: Double]?
            let meanRandomFaithfulness: [String: Double]?

            enum CodingKeys: String, CodingKey {
                case method, layer, classes
                case meanMassInTruth = "mean_mass_in_truth", meanFaithfulness = "mean_faithfulness"
                case meanRandomFaithfulness = "mean_random_faithfulness"
            }
        }
        let run = Run(
            method: options.method.rawValue, layer: options.method.usesLayer ? cam.layer : nil,
            classes: model.classNames, meanMassInTruth: Summary.meanMass(records),
            meanFaithfulness: options.metrics.isEmpty ? nil : Summary.meanScores(records, random: false),
            meanRandomFaithfulness: options.metrics.isEmpty || !scoresRandomMap
                ? nil : Summary.meanScores(records, random: true))
        try BatchReport(columns: columns + lime + scored).write(
            records, seconds: seconds, extra: run, to: outDirectory,
            stem: settings.reportStem)
    }
}
