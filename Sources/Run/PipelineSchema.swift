import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraObjects
import Yams

/// The pipeline file's keys by section, each with its type and where it lands. Keys are `tessera train` /
/// `segment` / `explain` flag names with underscores, and land in the same configuration types those flags set.
struct PipelineSchema {
    let reader: PipelineReader
    let name: String
    let checkPaths: Bool

    /// Every section and its keys, for errors, suggestions and the README's schema table.
    static let sections: [String: [String]] = [
        "": ["name", "out", "data", "ingest", "model", "train", "segment", "explain", "report"],
        "ingest": [
            "images", "masks", "mask_kind", "classes", "class_names", "channels", "val_split", "val_names", "crop",
            "flips", "elastic"
        ],
        "model": ["arch", "depth", "width", "batch_norm", "dropout", "upsampling", "padding", "encoder_weights"],
        "train": [
            "steps", "epochs", "batch", "lr", "optimizer", "momentum", "nesterov", "weight_decay", "schedule",
            "warmup", "loss", "class_weights", "border_weights", "clip_norm", "val_every", "best_metric",
            "patience", "seed"
        ],
        "segment": [
            "inputs", "model", "recursive", "outputs", "tile", "overlap", "blend", "tta", "masks",
            "overlay_format", "output_format", "tiff_pages", "instances", "connectivity", "seeds", "seed_depth",
            "min_size", "max_hole", "exclude_border", "truth"
        ],
        "explain": [
            "inputs", "model", "recursive", "method", "layer", "class", "target_mask", "box", "object", "colormap",
            "alpha", "outputs", "raw_format", "overlay_format", "masks", "band", "patch", "stride"
        ]
    ]

    // MARK: typed values

    func scalar(_ v: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = v else { throw reader.fail(v, key, "expected a single value, got a \(kind(v))") }
        return s.string
    }
    func string(_ v: Node, _ key: String) throws -> String {
        let s = try scalar(v, key)
        guard !s.isEmpty else { throw reader.fail(v, key, "must not be empty") }
        return s
    }
    func int(_ v: Node, _ key: String, _ range: ClosedRange<Int> = 0...Int.max) throws -> Int {
        guard let i = Int(try scalar(v, key)), range.contains(i) else {
            throw reader.fail(
                v, key,
                "expected an integer in \(range.lowerBound)...\(range.upperBound == Int.max ? "" : "\(range.upperBound)"), got '\((try? scalar(v, key)) ?? kind(v))'"
            )
        }
        return i
    }
    func double(
        _ v: Node, _ key: String,
        _ range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude
    ) throws -> Double {
        guard let d = Double(try scalar(v, key)), d.isFinite, range.contains(d) else {
            throw reader.fail(
                v, key,
                "expected a number in [\(range.lowerBound), \(range.upperBound)], got '\((try? scalar(v, key)) ?? kind(v))'"
            )
        }
        return d
    }
    func bool(_ v: Node, _ key: String) throws -> Bool {
        switch try scalar(v, key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let s: throw reader.fail(v, key, "expected true or false, got '\(s)'")
        }
    }
    /// One of a closed set's values: the enum declares the names, the error lists them and suggests the closest.
    func choice<E: CaseIterable & RawRepresentable>(_ v: Node, _ key: String, _: E.Type = E.self) throws -> E
    where E.RawValue == String {
        let s = try scalar(v, key)
        guard let value = E(rawValue: s) else {
            let options = E.allCases.map(\.rawValue)
            let hint = PipelineReader.suggestion(for: s, in: options).map { " (did you mean '\($0)'?)" } ?? ""
            throw reader.fail(v, key, "'\(s)' is not one of \(options.joined(separator: ", "))\(hint)")
        }
        return value
    }
    /// A list, or one value taken as a list of one.
    func strings(_ v: Node, _ key: String) throws -> [String] {
        if case .sequence(let s) = v { return try s.map { try string($0, key) } }
        return [try string(v, key)]
    }
    func kind(_ v: Node) -> String {
        switch v {
        case .scalar: return "value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }

    /// `{data}` replaced, then checked to exist (as a file, folder or glob match) when `checkPaths`.
    func path(_ v: Node, _ key: String, data: String?, mustExist: Bool = true) throws -> String {
        var p = try string(v, key)
        if p.contains("{data}") {
            guard let data else { throw reader.fail(v, key, "'{data}' is used but the file sets no top-level 'data'") }
            p = p.replacingOccurrences(of: "{data}", with: data)
        }
        if checkPaths && mustExist && !FileManager.default.fileExists(atPath: p) && (InputFiles.glob(p) ?? []).isEmpty {
            throw reader.fail(
                v, key,
                "no such file or folder '\(p)' (relative paths start at \(FileManager.default.currentDirectoryPath))")
        }
        return p
    }

    /// The entries of a section, refusing keys it does not have.
    func entries(_ node: Node, section: String) throws -> [(String, Node)] {
        guard case .mapping(let m) = node else {
            throw reader.fail(node, section, "expected a mapping of keys, got a \(kind(node))")
        }
        let known = Self.sections[section] ?? []
        return try m.map { k, v in
            let key = try scalar(k, section)
            guard known.contains(key) else {
                let hint = PipelineReader.suggestion(for: key, in: known).map { "; did you mean '\($0)'?" } ?? ""
                let place = section.isEmpty ? "at the top level" : "in '\(section)'"
                throw reader.fail(
                    k, section.isEmpty ? key : "\(section).\(key)",
                    "unknown key \(place)\(hint) (known: \(known.joined(separator: ", ")))")
            }
            return (key, v)
        }
    }

    // MARK: sections

    func config(from root: Node) throws -> PipelineConfig {
        var top: [String: Node] = [:]
        for (k, v) in try entries(root, section: "") { top[k] = v }
        let pipelineName = try top["name"].map { try string($0, "name") } ?? name
        let data = try top["data"].map { try path($0, "data", data: nil) }
        var config = PipelineConfig(
            name: pipelineName, out: try top["out"].map { try string($0, "out") } ?? "runs/\(pipelineName)",
            data: data)
        if let r = top["report"] { config.report = try bool(r, "report") }
        if top["ingest"] != nil || top["model"] != nil || top["train"] != nil {
            config.training = try training(ingest: top["ingest"], model: top["model"], train: top["train"], data: data)
        }
        if let s = top["segment"] { config.segment = try segment(s, data: data) }
        if let e = top["explain"] { config.explain = try explain(e, data: data) }
        let trains = config.training != nil
        if let s = top["segment"], config.segment?.model == nil, !trains {
            throw reader.fail(s, "segment", "needs 'model' (a checkpoint) when the pipeline has no train stage")
        }
        if let e = top["explain"], config.explain?.model == nil, !trains {
            throw reader.fail(e, "explain", "needs 'model' when the pipeline has no train stage")
        }
        config.resolved = Self.plain(root) as? [String: Any] ?? [:]
        return config
    }

    func training(ingest: Node?, model: Node?, train: Node?, data: String?) throws -> TrainingConfig {
        guard let ingest else {
            throw reader.fail(
                model ?? train, "ingest", "a model or train section needs an 'ingest' section with images and masks")
        }
        var fields: [String: Node] = [:]
        for (k, v) in try entries(ingest, section: "ingest") { fields[k] = v }
        guard let images = fields["images"], let masks = fields["masks"] else {
            throw reader.fail(ingest, "ingest", "needs 'images' and 'masks'")
        }
        var c = TrainingConfig(
            images: try path(images, "ingest.images", data: data), masks: try path(masks, "ingest.masks", data: data))
        for (k, v) in fields {
            let key = "ingest.\(k)"
            switch k {
            case "mask_kind": c.maskKind = try choice(v, key)
            case "classes": c.classes = try int(v, key, TrainingConfig.Ranges.classes)
            case "class_names": c.classNames = try strings(v, key)
            case "channels": c.channels = try int(v, key, TrainingConfig.Ranges.channels)
            case "val_split": c.validationFraction = try double(v, key, 0...0.9)
            case "val_names": c.validationNames = try strings(v, key)
            case "crop": c.crop = try int(v, key, TrainingConfig.Ranges.crop)
            case "flips": c.flips = try bool(v, key)
            case "elastic": c.elastic = try bool(v, key)
            default: break
            }
        }
        if let model {
            for (k, v) in try entries(model, section: "model") {
                let key = "model.\(k)"
                switch k {
                case "arch": c.model = try choice(v, key)
                case "depth": c.depth = try int(v, key, TrainingConfig.Ranges.depth)
                case "width": c.width = try int(v, key, TrainingConfig.Ranges.width)
                case "batch_norm": c.batchNorm = try bool(v, key)
                case "dropout": c.dropout = try double(v, key, 0...0.99)
                case "upsampling": c.upsampling = try choice(v, key, UNetConfig.Upsampling.self)
                case "padding": c.padding = try choice(v, key, UNetConfig.ConvPadding.self)
                case "encoder_weights": c.encoderWeights = try path(v, key, data: data)
                default: break
                }
            }
        }
        if let train {
            var warmup = 0, kind = LearningRateSchedule.Kind.constant
            for (k, v) in try entries(train, section: "train") {
                let key = "train.\(k)"
                switch k {
                case "steps": c.steps = try int(v, key, TrainingConfig.Ranges.steps)
                case "epochs": c.epochs = try int(v, key, TrainingConfig.Ranges.epochs)
                case "batch": c.batch = try int(v, key, TrainingConfig.Ranges.batch)
                case "lr": c.learningRate = try double(v, key, 0...10)
                case "optimizer": c.optimizer = try choice(v, key)
                case "momentum": c.momentum = try double(v, key, 0...1)
                case "nesterov": c.nesterov = try bool(v, key)
                case "weight_decay": c.weightDecay = try double(v, key, 0...1)
                case "schedule": kind = try choice(v, key, LearningRateSchedule.Kind.self)
                case "warmup": warmup = try int(v, key, TrainingConfig.Ranges.warmup)
                case "loss": c.loss = try choice(v, key)
                case "class_weights":
                    guard case .sequence(let s) = v else { throw reader.fail(v, key, "expected a list of numbers") }
                    c.classWeights = try s.map { try double($0, key, 0...1e6) }
                case "border_weights": c.borderWeights = try bool(v, key) ? true : nil
                case "clip_norm": c.clipNorm = try double(v, key, 0...1e9)
                case "val_every": c.validateEvery = try int(v, key, TrainingConfig.Ranges.validateEvery)
                case "best_metric": c.bestMetric = try choice(v, key)
                case "patience": c.patience = try int(v, key, TrainingConfig.Ranges.patience)
                case "seed": c.seed = UInt64(try int(v, key))
                default: break
                }
            }
            c.schedule = LearningRateSchedule(kind, warmupSteps: warmup)
        }
        do { _ = try c.network(channels: 1, classes: max(2, c.classes ?? 2)) } catch {
            throw reader.fail(model ?? ingest, "model", "\(error)")
        }
        return c
    }

    /// Reads a key every stage has (`inputs`, `model`, `recursive`) into `stage`; false for any other key.
    func stageKey<Options>(
        _ k: String, _ v: Node, _ key: String, into stage: inout PipelineConfig.Stage<Options>, data: String?
    ) throws -> Bool {
        switch k {
        case "inputs":
            stage.inputs = try strings(v, key).map { try path(Node($0, Tag(.str), .plain), key, data: data) }
        case "model": stage.model = try path(v, key, data: data)
        case "recursive": stage.recursive = try bool(v, key)
        default: return false
        }
        return true
    }

    func segment(_ node: Node, data: String?) throws -> PipelineConfig.Stage<SegmentOptions> {
        var stage = PipelineConfig.Stage(options: SegmentOptions())
        var o = SegmentOptions()
        var objects = InstanceSettings()
        for (k, v) in try entries(node, section: "segment") {
            let key = "segment.\(k)"
            if try stageKey(k, v, key, into: &stage, data: data) { continue }
            switch k {
            case "outputs":
                o.outputs = Set(try strings(v, key).map { try choice(Node($0), key, SegmentOutput.self) })
            case "tile": o.tile = try int(v, key, 8...16384)
            case "overlap": o.overlap = try double(v, key, 0...0.95)
            case "blend": o.blend = try choice(v, key)
            case "tta": o.tta = try bool(v, key)
            case "masks": o.masks = URL(fileURLWithPath: try path(v, key, data: data))
            case "overlay_format": o.overlayFormat = try choice(v, key)
            case "output_format": o.outputFormat = try choice(v, key)
            case "tiff_pages": o.tiffPages = try choice(v, key)
            case "instances": objects.method = try choice(v, key)
            case "connectivity":
                let n = try int(v, key, 4...8)
                guard let c = Connectivity(rawValue: n) else { throw reader.fail(v, key, "expected 4 or 8, got \(n)") }
                objects.connectivity = c
            case "seeds": objects.seeds = try choice(v, key)
            case "seed_depth": objects.seedDepth = try double(v, key, 1e-6...1e6)
            case "min_size": objects.minSize = try int(v, key)
            case "max_hole": objects.maxHole = try int(v, key)
            case "exclude_border": objects.excludeBorder = try bool(v, key)
            case "truth": o.truth = try choice(v, key)
            default: break
            }
        }
        guard !stage.inputs.isEmpty else { throw reader.fail(node, "segment", "needs 'inputs'") }
        let entries = try entries(node, section: "segment").map(\.0)
        if entries.contains("instances") {
            o.instances = objects
        } else if let rule = entries.first(where: {
            ["connectivity", "seeds", "seed_depth", "min_size", "max_hole", "exclude_border"].contains($0)
        }) {
            throw reader.fail(
                node, "segment.\(rule)", "applies to objects: add 'instances: components' or 'instances: watershed'")
        }
        o.recursive = stage.recursive
        stage.options = o
        return stage
    }

    func explain(_ node: Node, data: String?) throws -> PipelineConfig.Stage<ExplainOptions> {
        var stage = PipelineConfig.Stage(options: ExplainOptions())
        var o = ExplainOptions()
        for (k, v) in try entries(node, section: "explain") {
            let key = "explain.\(k)"
            if try stageKey(k, v, key, into: &stage, data: data) { continue }
            switch k {
            case "method": o.method = try choice(v, key)
            case "layer": o.layer = try string(v, key)
            case "class": o.targetClass = try string(v, key)
            case "target_mask": o.targetMask = URL(fileURLWithPath: try path(v, key, data: data))
            case "object": o.object = try int(v, key, 1...Int(UInt32.max))
            case "box":
                guard case .sequence(let s) = v, s.count == 4 else {
                    throw reader.fail(v, key, "expected [x, y, width, height]")
                }
                let b = try s.map { try int($0, key) }
                o.box = PixelWindow(x: b[0], y: b[1], width: max(1, b[2]), height: max(1, b[3]))
            case "colormap": o.colormap = try choice(v, key)
            case "alpha": o.alpha = Float(try double(v, key, 0...1))
            case "outputs":
                o.outputs = Set(try strings(v, key).map { try choice(Node($0), key, ExplainOutput.self) })
            case "raw_format": o.rawFormat = try choice(v, key)
            case "overlay_format": o.overlayFormat = try choice(v, key)
            case "masks": o.masks = URL(fileURLWithPath: try path(v, key, data: data))
            case "band": o.band = try int(v, key, 0...100)
            case "patch": o.patch = try int(v, key, 1...4096)
            case "stride": o.stride = try int(v, key, 1...4096)
            default: break
            }
        }
        guard !stage.inputs.isEmpty else { throw reader.fail(node, "explain", "needs 'inputs'") }
        stage.options = o
        return stage
    }

    /// The document as plain values (strings, lists, dictionaries) for JSON.
    static func plain(_ node: Node) -> Any {
        switch node {
        case .scalar(let s): return s.string
        case .sequence(let s): return s.map(plain)
        case .mapping(let m):
            return Dictionary(m.map { ($0.key.string ?? "", plain($0.value)) }, uniquingKeysWith: { a, _ in a })
        case .alias: return ""
        }
    }
}
