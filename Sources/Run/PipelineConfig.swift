import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraTraining
import Yams

/// A declared pipeline (`pipelines/*.yaml`): ingest + model + train (one `TrainingConfig`, the type behind
/// `tessera train`'s flags), segment (`SegmentOptions`), classify (`ClassifyOptions`), eval (a classifier on a
/// labelled folder, `EvalOptions`' FGSM), explain (`ExplainOptions`); every stage optional.
public struct PipelineConfig {
    public var name: String
    /// Run folder (default `runs/<name>`).
    public var out: String
    /// Base folder that `{data}` stands for in paths.
    public var data: String?
    public var training: TrainingConfig?
    public var segment: Stage<SegmentOptions>?
    public var explain: Stage<ExplainOptions>?
    public var classify: Stage<ClassifyOptions>?
    /// `inputs` holds the one labelled folder (or CSV) a classifier is scored on.
    public var evaluate: Stage<EvalOptions>?
    /// Write `report.html` at the end.
    public var report = true
    /// The configuration as read, with overrides applied (for the report and `pipeline.json`).
    public var resolved: [String: Any] = [:]

    /// A stage that runs a model over inputs.
    public struct Stage<Options> {
        public var inputs: [String] = []
        /// Descend into sub-folders of the inputs.
        public var recursive = false
        /// A checkpoint; nil: the train stage's `best.safetensors`.
        public var model: String?
        public var options: Options
    }
}

/// A pipeline file that cannot be used: where (file, line, column, key) and why, with a suggestion.
public struct PipelineError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int?, column: Int?
    public let key: String
    public let reason: String
    public var description: String {
        let place = line.map { "\(file):\($0):\(column ?? 1)" } ?? file
        return "\(place): \(key.isEmpty ? "" : key + ": ")\(reason)"
    }
}

/// Reads pipeline YAML into `PipelineConfig`: unknown keys, wrong types and missing paths are errors naming the
/// file, line and key, with the closest known key as a suggestion. Aliases are refused and files are capped at
/// 1 MB, so an untrusted file cannot make the reader expand without bound.
public struct PipelineReader {
    public let file: String
    public static let maxBytes = 1 << 20

    /// Every section and its keys (from the stages' option tables).
    public static var sections: [String: [String]] { PipelineSchema.sections }

    /// A reader whose errors name `file`.
    public init(file: String) { self.file = file }

    /// Reads `url` and applies `overrides` (`section.key=value`, the value in YAML syntax).
    public static func read(_ url: URL, overrides: [String] = [], checkPaths: Bool = true) throws -> PipelineConfig {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        guard let size = attributes?[.size] as? Int else {
            throw PipelineError(file: url.path, line: nil, column: nil, key: "", reason: "no such file")
        }
        guard size <= maxBytes else {
            throw PipelineError(
                file: url.path, line: nil, column: nil, key: "", reason: "larger than \(maxBytes) bytes")
        }
        let text = try String(contentsOf: url, encoding: .utf8)
        let name = url.deletingPathExtension().lastPathComponent
        return try PipelineReader(file: url.path).parse(text, name: name, overrides: overrides, checkPaths: checkPaths)
    }

    /// Parses pipeline YAML text.
    public func parse(_ text: String, name: String, overrides: [String] = [], checkPaths: Bool = true) throws
        -> PipelineConfig
    {
        try refuseAnchors(text)
        var root: Node
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping(Node.Mapping([]))
        } catch let error as YamlError {
            throw PipelineError(file: file, line: nil, column: nil, key: "", reason: "not valid YAML: \(error)")
        }
        try refuseAliases(root)
        guard case .mapping = root else { throw fail(root, "", "the file must be a mapping of sections") }
        for o in overrides { root = try apply(override: o, to: root) }
        return try PipelineSchema(reader: self, name: name, checkPaths: checkPaths).config(from: root)
    }

    /// Anchors, aliases and oversized documents, from the parser's events (`YAMLEventGuard`).
    func refuseAnchors(_ text: String) throws {
        do { try YAMLEventGuard.check(text) } catch let v as YAMLEventGuard.Violation {
            throw PipelineError(file: file, line: v.line, column: v.column, key: "", reason: v.reason)
        }
    }

    func refuseAliases(_ node: Node) throws {
        switch node {
        case .alias: throw fail(node, "", "YAML aliases are not accepted in pipeline files")
        case .scalar: return
        case .mapping(let m): for (k, v) in m { try refuseAliases(k); try refuseAliases(v) }
        case .sequence(let s): for v in s { try refuseAliases(v) }
        }
    }

    /// `section.key=value` (or `key=value` for top-level keys) written into the document.
    func apply(override: String, to root: Node) throws -> Node {
        guard let eq = override.firstIndex(of: "=") else {
            throw PipelineError(
                file: "--set", line: nil, column: nil, key: override, reason: "expected section.key=value")
        }
        let path = override[..<eq].split(separator: ".").map(String.init)
        let valueText = String(override[override.index(after: eq)...])
        guard (1...2).contains(path.count), path.allSatisfy({ !$0.isEmpty }) else {
            throw PipelineError(
                file: "--set", line: nil, column: nil, key: String(override[..<eq]),
                reason: "expected section.key=value or key=value")
        }
        let value: Node
        do {
            try YAMLEventGuard.check(valueText)
            value = try Yams.compose(yaml: valueText) ?? Node("")
        } catch let v as YAMLEventGuard.Violation {
            throw PipelineError(
                file: "--set", line: nil, column: nil, key: path.joined(separator: "."), reason: v.reason)
        } catch {
            throw PipelineError(
                file: "--set", line: nil, column: nil, key: path.joined(separator: "."),
                reason: "value is not YAML: \(error)")
        }
        try refuseAliases(value)
        var out = root
        if path.count == 1 {
            out[Node(path[0])] = value
        } else {
            var section = out[Node(path[0])] ?? Node.mapping(Node.Mapping([]))
            guard case .mapping = section else {
                throw PipelineError(file: "--set", line: nil, column: nil, key: path[0], reason: "is not a section")
            }
            section[Node(path[1])] = value
            out[Node(path[0])] = section
        }
        return out
    }

    func fail(_ node: Node?, _ key: String, _ reason: String) -> PipelineError {
        let mark = node?.mark
        return PipelineError(file: file, line: mark?.line, column: mark?.column, key: key, reason: reason)
    }
}
