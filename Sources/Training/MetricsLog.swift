import Foundation
import TesseraCheckpoint
import TesseraEngine

/// `metrics.jsonl` (one JSON object per validation) and `metrics.csv` (the same rows) in a run folder.
public struct MetricsLog {
    let jsonl: URL, csv: URL

    public init(directory: URL) {
        let folder = TrainingRunFolder(directory)
        jsonl = folder.metricsLog
        csv = folder.metricsTable
    }

    /// Rows written so far (none when the log is missing or unreadable).
    public func rows() -> [[String: Double]] {
        guard let text = try? String(contentsOf: jsonl, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Double]
        }
    }

    func append(step: Int, epoch: Int, metrics: [String: Double]) throws {
        var row = metrics
        row["step"] = Double(step)
        row["epoch"] = Double(epoch)
        try rewrite(rows() + [row])
    }

    /// Drops rows after `step` (written after the checkpoint a resumed run starts from).
    func truncate(after step: Int) throws {
        let kept = rows().filter { ($0["step"] ?? 0) <= Double(step) }
        try rewrite(kept)
    }

    /// Best value of `metric` so far, its row, and validations since.
    func best(metric: String) -> (Double, [String: Double], Int) {
        var best = -Double.infinity, bestRow: [String: Double] = [:], since = 0
        for row in rows() {
            let score = row[metric] ?? -(row["train_loss"] ?? 0)
            if score > best { best = score; bestRow = row; since = 0 } else { since += 1 }
        }
        return (best, bestRow, since)
    }

    /// Both files, atomically, from all rows (columns: step, epoch, then the metric names in order).
    private func rewrite(_ rows: [[String: Double]]) throws {
        let lines = try rows.map {
            String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
        }
        try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: jsonl)
        let keys = ["step", "epoch"] + Set(rows.flatMap(\.keys)).subtracting(["step", "epoch"]).sorted()
        var text = keys.joined(separator: ",") + "\n"
        for row in rows {
            text +=
                keys.map { k in row[k].map { v in v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) } ?? ""
                }
                .joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: csv)
    }
}
