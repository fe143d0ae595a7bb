import Foundation
import TesseraEngine

/// `metrics.jsonl` (one JSON object per validation) and `metrics.csv` (the same rows) in a run folder.
struct MetricsLog {
    let jsonl: URL, csv: URL

    init(directory: URL) {
        jsonl = directory.appendingPathComponent("metrics.jsonl")
        csv = directory.appendingPathComponent("metrics.csv")
    }

    /// Rows written so far.
    func rows() -> [[String: Double]] {
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
        let lines = try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
        try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: jsonl)
        let keys = ["step", "epoch"] + Set(rows.flatMap(\.keys)).subtracting(["step", "epoch"]).sorted()
        var text = keys.joined(separator: ",") + "\n"
        for row in rows {
            text += keys.map { k in row[k].map { v in v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) } ?? "" }
                .joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: csv)
    }
}

/// Progress of a run: one rewritten line on a terminal (loss, seconds per step, ETA), plain lines otherwise.
public final class ProgressReporter {
    let isTerminal = isatty(STDERR_FILENO) != 0
    var total = 0, first = 0
    var started = DispatchTime.now().uptimeNanoseconds
    var lastLine = DispatchTime.now().uptimeNanoseconds

    public init() {}

    func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    func start(total: Int, at step: Int) {
        self.total = total
        first = step
        started = DispatchTime.now().uptimeNanoseconds
    }

    func update(step: Int, loss: Double) {
        let now = DispatchTime.now().uptimeNanoseconds
        let perStep = Double(now - started) / 1e9 / Double(max(1, step - first))
        let eta = perStep * Double(total - step)
        let line = String(format: "step %d/%d  loss %.4f  %.2f s/step  ETA %@", step, total, loss, perStep, Self.duration(eta))
        if isTerminal {
            write("\r\u{1B}[K" + line)
        } else if now - lastLine > 10_000_000_000 || step == total {
            write(line + "\n")
            lastLine = now
        }
    }

    func report(step: Int, metrics: [String: Double], keys: [String]) {
        let parts = keys.compactMap { k in metrics[k].map { String(format: "%@ %.4f", k, $0) } }
        write((isTerminal ? "\r\u{1B}[K" : "") + "validation at step \(step): " + parts.joined(separator: "  ") + "\n")
    }

    func finish() { if isTerminal { write("\n") } }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
