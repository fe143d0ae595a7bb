import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraSettings

/// `tessera explain --compare METHOD,...`: each method run on the same inputs with the same target (an
/// `ExplainRun` in `OUT/METHOD/`), every map scored for faithfulness, and a table of methods by score beside a
/// random map's (`OUT/compare.csv`, `OUT/compare.json`). A method that only matches the random row has not shown
/// that its map follows the model.
public final class ExplainComparison {
    public let modelURL: URL
    public let options: ExplainOptions
    public let outDirectory: URL
    public var console = Console()

    /// The methods in declaration order.
    public var methods: [CAMMethod] { CAMMethod.allCases.filter(options.compare.contains) }
    /// The scores: those asked for, or all of them.
    public var metrics: [FaithfulnessMetric] {
        options.metrics.isEmpty
            ? FaithfulnessMetric.allCases : FaithfulnessMetric.allCases.filter(options.metrics.contains)
    }

    public init(model: URL, options: ExplainOptions, out: URL) throws {
        try options.validate()
        guard !options.compare.isEmpty else { throw OptionError(option: "compare", reason: "names no method") }
        modelURL = model
        self.options = options
        outDirectory = out
    }

    /// One line of the table: a method (or the random map) and its mean scores.
    public struct Row: Encodable {
        public let method: String
        public let images: Int
        public let failed: Int
        public let scores: [String: Double]
        /// Mean seconds per image of the map alone (nil for the random map).
        public let secondsPerImage: Double?

        enum CodingKeys: String, CodingKey {
            case method, images, failed, scores
            case secondsPerImage = "seconds_per_image"
        }
    }

    public struct Summary {
        /// Best first by the first metric, the random map among them.
        public let rows: [Row]
        /// Each method's run.
        public let runs: [(method: CAMMethod, summary: ExplainRun.Summary)]
        public var failed: Int { runs.reduce(0) { $0 + $1.summary.failed } }
    }

    /// The folder of one method's outputs.
    public func folder(_ method: CAMMethod) -> URL { outDirectory.appendingPathComponent(method.rawValue) }

    public func run(inputs: [String]) throws -> Summary {
        var runs = [(method: CAMMethod, summary: ExplainRun.Summary)]()
        var rows = [Row]()
        for (i, method) in methods.enumerated() {
            var o = options
            o.method = method
            o.compare = []
            o.metrics = Set(metrics)
            let run = try ExplainRun(model: modelURL, options: o, out: folder(method))
            run.console = console
            // The random map is the same for every method (seeded by the input's path): scored once.
            run.scoresRandomMap = i == 0
            console.logger.info("== \(method.rawValue)")
            let summary = try run.run(inputs: inputs)
            runs.append((method, summary))
            let seconds = summary.records.compactMap(\.mapSeconds)
            rows.append(
                Row(
                    method: method.rawValue, images: summary.records.filter { $0.faithfulness != nil }.count,
                    failed: summary.failed, scores: summary.meanScores(),
                    secondsPerImage: seconds.isEmpty ? nil : seconds.reduce(0, +) / Double(seconds.count)))
            if i == 0 {
                rows.append(
                    Row(
                        method: "random", images: summary.records.filter { $0.randomFaithfulness != nil }.count,
                        failed: 0, scores: summary.meanScores(random: true), secondsPerImage: nil))
            }
        }
        let key = metrics[0]
        rows.sort {
            let a = $0.scores[key.rawValue] ?? .nan, b = $1.scores[key.rawValue] ?? .nan
            return key.higherIsBetter ? a > b : a < b
        }
        try write(rows)
        for line in table(rows) { console.logger.info("\(line)") }
        return Summary(rows: rows, runs: runs)
    }

    /// The table as text lines: method, each score, seconds per image.
    public func table(_ rows: [Row]) -> [String] {
        let header =
            ["method".padding(toLength: 16, withPad: " ", startingAt: 0)]
            + metrics.map { ($0.rawValue + ($0.higherIsBetter ? " ^" : " v")).leftPadded(14) } + [
                "s/image".leftPadded(10)
            ]
        return [header.joined()]
            + rows.map { r in
                ([r.method.padding(toLength: 16, withPad: " ", startingAt: 0)]
                    + metrics.map { m in (r.scores[m.rawValue].map { String(format: "%.4f", $0) } ?? "").leftPadded(14)
                    }
                    + [(r.secondsPerImage.map { String(format: "%.3f", $0) } ?? "").leftPadded(10)]).joined()
            }
    }

    func write(_ rows: [Row]) throws {
        try FileManager.default.createDirectory(at: outDirectory, withIntermediateDirectories: true)
        var csv = (["method", "images", "failed"] + metrics.map(\.rawValue) + ["seconds_per_image"]).joined(
            separator: ",")
        csv += "\n"
        for r in rows {
            let fields =
                [r.method, "\(r.images)", "\(r.failed)"]
                + metrics.map { m in r.scores[m.rawValue].map { String(format: "%.6f", $0) } ?? "" }
                + [r.secondsPerImage.map { String(format: "%.4f", $0) } ?? ""]
            csv += fields.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: outDirectory.appendingPathComponent("compare.csv"))
        struct File: Encodable {
            let metrics: [String]
            let better: [String: String]
            let rows: [Row]
        }
        let file = File(
            metrics: metrics.map(\.rawValue),
            better: Dictionary(
                uniqueKeysWithValues: metrics.map { ($0.rawValue, $0.higherIsBetter ? "higher" : "lower") }),
            rows: rows)
        try AtomicFile.write(
            try JSONEncoder.pretty.encode(file), to: outDirectory.appendingPathComponent("compare.json"))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
