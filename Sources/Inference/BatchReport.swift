import Foundation
import TesseraData
import TesseraEngine

/// `report.csv` (one line per input, the given columns) and `report.json` (a summary, run-level results and the
/// records), written atomically.
public struct BatchReport<Record: BatchRecord> {
    public var columns: [(name: String, value: (Record) -> String)]

    public init(columns: [(name: String, value: (Record) -> String)]) { self.columns = columns }

    /// Counts and throughput of `records` over `seconds` of wall time.
    public static func summary(_ records: [Record], seconds: Double) -> [String: Double] {
        let counts = BatchCounts(records)
        var summary: [String: Double] = [
            "images": Double(counts.images), "done": Double(counts.done), "existing": Double(counts.existing),
            "failed": Double(counts.failed), "seconds": seconds
        ]
        if let perImage = counts.secondsPerImage {
            summary["images_per_second"] = 1 / max(perImage, 1e-9)
            summary["seconds_per_image"] = perImage
        }
        return summary
    }

    /// Writes `<stem>.csv` and `<stem>.json` into `folder`; `extra` is encoded beside the summary and records.
    public func write<Extra: Encodable>(
        _ records: [Record], seconds: Double, extra: Extra, to folder: URL,
        stem: String
    ) throws {
        var csv =
            (["path", "status"] + columns.map(\.name) + ["seconds", "error"]).map(Self.csvField)
            .joined(separator: ",") + "\n"
        for r in records {
            let fields =
                [Self.csvField(r.path), r.status.rawValue] + columns.map { $0.value(r) }
                + [String(format: "%.4f", r.seconds), Self.csvField(r.error ?? "")]
            csv += fields.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: folder.appendingPathComponent(stem + ".csv"))
        let json = try JSONEncoder.pretty.encode(
            BatchReportFile(
                summary: Self.summary(records, seconds: seconds),
                extra: extra, images: records))
        try AtomicFile.write(json, to: folder.appendingPathComponent(stem + ".json"))
    }

    public static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r")
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// `report.json`: the summary, the run-level keys of `extra`, and the records under `images`.
struct BatchReportFile<Record: Encodable, Extra: Encodable>: Encodable {
    let summary: [String: Double]
    let extra: Extra
    let images: [Record]

    enum Key: String, CodingKey { case summary, images }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(summary, forKey: .summary)
        try c.encode(images, forKey: .images)
        try extra.encode(to: encoder)
    }
}
