import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraObjects
import TesseraSettings
import TesseraTraining
import Yams

/// The pipeline file's keys by section, each with its type and where it lands. Keys are `tessera train` /
/// `segment` / `explain` flag names with underscores, and land in the same configuration types those flags set.
struct PipelineSchema {
    let reader: PipelineReader
    let name: String
    let checkPaths: Bool

    /// The keys every model-running stage has besides its option table's.
    static let stageKeys = ["inputs", "model"]

    /// Every section and its keys, from the stages' option tables, for errors, suggestions and the README's
    /// schema table.
    static var sections: [String: [String]] {
        let train = TrainingConfig.table
        return [
            "": ["name", "out", "data", "report", "ingest", "model", "train", "segment", "classify", "eval", "explain"],
            "ingest": train.pipelineKeys(in: "ingest").map(\.key),
            "model": train.pipelineKeys(in: "model").map(\.key),
            "train": train.pipelineKeys(in: "train").map(\.key),
            "segment": stageKeys + SegmentOptions.table.pipelineKeys(in: "segment").map(\.key),
            "explain": stageKeys + ExplainOptions.table.pipelineKeys(in: "explain").map(\.key),
            "classify": stageKeys + ClassifyOptions.table.pipelineKeys(in: "classify").map(\.key),
            "eval": ["images", "model", "fgsm"]
        ]
    }

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
    func bool(_ v: Node, _ key: String) throws -> Bool {
        do { return try Parse.bool(try scalar(v, key)) } catch let problem as OptionProblem {
            throw reader.fail(v, key, problem.reason)
        }
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
                let hint = Parse.suggestion(for: key, in: known).map { "; did you mean '\($0)'?" } ?? ""
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
        if let c = top["classify"] {
            var stage = PipelineConfig.Stage(options: ClassifyOptions())
            try stageKeys(c, section: "classify", into: &stage, data: data)
            try read(c, section: "classify", table: ClassifyOptions.table, into: &stage.options, data: data) {
                try $0.validate()
            }
            stage.recursive = stage.options.recursive
            config.classify = stage
        }
        if let e = top["eval"] { config.evaluate = try evaluation(e, data: data) }
        let trains = config.training != nil
        for (key, model) in [("classify", config.classify?.model), ("eval", config.evaluate?.model)]
        where top[key] != nil && model == nil && !trains {
            throw reader.fail(top[key], key, "needs 'model' (a checkpoint) when the pipeline has no train stage")
        }
        if let s = top["segment"], config.segment?.model == nil, !trains {
            throw reader.fail(s, "segment", "needs 'model' (a checkpoint) when the pipeline has no train stage")
        }
        if let e = top["explain"], config.explain?.model == nil, !trains {
            throw reader.fail(e, "explain", "needs 'model' when the pipeline has no train stage")
        }
        config.resolved = Self.plain(root) as? [String: Any] ?? [:]
        return config
    }

    /// The text of an option's value: a scalar, or a list joined by commas for the kinds that take several;
    /// paths with `{data}` replaced and checked to exist.
    func text<Options>(_ v: Node, _ key: String, for option: OptionSpec<Options>, data: String?) throws -> String {
        switch option.kind {
        case .choices, .integers, .numbers, .texts:
            guard case .sequence(let items) = v else { return try scalar(v, key) }
            return try items.map { try scalar($0, key) }.joined(separator: ",")
        case .path: return try path(v, key, data: data)
        default: return try scalar(v, key)
        }
    }

    /// Reads the keys of `section` through `table` into `options`: each value parsed and checked by its option
    /// (the reason placed at its line), a rule given without the key it applies under refused, then the stage's
    /// own `validate` (settings that do not go together).
    func read<Options>(
        _ node: Node, section: String, table: OptionTable<Options>, into options: inout Options, data: String?,
        skip: [String] = [], validate: (Options) throws -> Void
    ) throws {
        let fields = try entries(node, section: section)
        let given = Set(fields.map(\.0))
        for (k, v) in fields where !skip.contains(k) {
            let key = "\(section).\(k)"
            guard let option = table.pipelineKeys(in: section).first(where: { $0.key == k }) else { continue }
            if let needed = option.requires, !given.contains(needed) {
                throw reader.fail(
                    v, key, "applies to objects: add '\(needed): components' or '\(needed): watershed'")
            }
            do { try option.set(try text(v, key, for: option, data: data), in: &options) } catch let p as OptionProblem
            {
                throw reader.fail(v, key, p.reason)
            }
        }
        do { try validate(options) } catch let e as OptionError {
            let place = fields.first { $0.0 == e.option }?.1 ?? node
            throw reader.fail(place, "\(section).\(e.option)", e.reason)
        }
    }

    func training(ingest: Node?, model: Node?, train: Node?, data: String?) throws -> TrainingConfig {
        guard let ingest else {
            throw reader.fail(
                model ?? train, "ingest", "a model or train section needs an 'ingest' section with images and masks")
        }
        let keys = Set(try entries(ingest, section: "ingest").map(\.0))
        guard keys.contains("images") else {
            throw reader.fail(ingest, "ingest", "needs 'images' (and 'masks', unless the model's task is classify)")
        }
        var c = TrainingConfig(images: "", masks: "")
        let table = TrainingConfig.table
        for (name, node) in [("ingest", ingest), ("model", model), ("train", train)] {
            guard let node else { continue }
            try read(node, section: name, table: table, into: &c, data: data) { _ in }
        }
        do { try c.validate() } catch let e as OptionError {
            let section = table[e.option].map(table.section(of:)) ?? "train"
            let place = [("ingest", ingest), ("model", model), ("train", train)].first { $0.0 == section }?.1 ?? ingest
            throw reader.fail(place, "\(section).\(e.option)", e.reason)
        } catch let e as TrainingError {
            throw reader.fail(model ?? ingest, "ingest", e.reason)
        }
        do { _ = try c.network(channels: 1, classes: max(2, c.classes ?? 2)) } catch {
            throw reader.fail(model ?? ingest, "model", "\(error)")
        }
        return c
    }

    /// Reads a key every stage has (`inputs`, `model`) into `stage`.
    func stageKeys<Options>(
        _ node: Node, section: String, into stage: inout PipelineConfig.Stage<Options>, data: String?
    )
        throws
    {
        for (k, v) in try entries(node, section: section) {
            let key = "\(section).\(k)"
            switch k {
            case "inputs":
                stage.inputs = try strings(v, key).map { try path(Node($0, Tag(.str), .plain), key, data: data) }
            case "model": stage.model = try path(v, key, data: data)
            default: continue
            }
        }
        guard !stage.inputs.isEmpty else { throw reader.fail(node, section, "needs 'inputs'") }
    }

    func segment(_ node: Node, data: String?) throws -> PipelineConfig.Stage<SegmentOptions> {
        var stage = PipelineConfig.Stage(options: SegmentOptions())
        try stageKeys(node, section: "segment", into: &stage, data: data)
        try read(node, section: "segment", table: SegmentOptions.table, into: &stage.options, data: data) {
            try $0.validate()
        }
        stage.recursive = stage.options.recursive
        return stage
    }

    func explain(_ node: Node, data: String?) throws -> PipelineConfig.Stage<ExplainOptions> {
        var stage = PipelineConfig.Stage(options: ExplainOptions())
        try stageKeys(node, section: "explain", into: &stage, data: data)
        try read(node, section: "explain", table: ExplainOptions.table, into: &stage.options, data: data) {
            try $0.validate()
        }
        stage.recursive = stage.options.recursive
        return stage
    }

    /// The `eval` section: `images` (a labelled folder or CSV), `model`, `fgsm` (epsilons).
    func evaluation(_ node: Node, data: String?) throws -> PipelineConfig.Stage<EvalOptions> {
        var stage = PipelineConfig.Stage(options: EvalOptions())
        for (k, v) in try entries(node, section: "eval") {
            let key = "eval.\(k)"
            switch k {
            case "images": stage.inputs = [try path(v, key, data: data)]
            case "model": stage.model = try path(v, key, data: data)
            case "fgsm":
                guard let option = EvalOptions.table["fgsm"] else { continue }
                do { try option.set(try text(v, key, for: option, data: data), in: &stage.options) } catch let p
                    as OptionProblem
                {
                    throw reader.fail(v, key, p.reason)
                }
            default: continue
            }
        }
        guard !stage.inputs.isEmpty else { throw reader.fail(node, "eval", "needs 'images'") }
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
