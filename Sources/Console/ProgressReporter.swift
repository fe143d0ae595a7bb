import Foundation
import Logging

/// Progress of a loop (training steps, images): a redrawn bar with rate and ETA on a terminal, a plain line every
/// 10 seconds otherwise, JSON lines with `--json`, nothing with `--quiet`.
public final class ProgressReporter {
    enum Mode { case bar, lines, json, silent }

    static let isTerminal = isatty(STDERR_FILENO) != 0
    /// Erases a bar being drawn (empty when standard error is not a terminal).
    static var clearLine: String { isTerminal ? "\r\u{1B}[K" : "" }

    let mode: Mode
    let unit: String
    /// Where validation lines are logged.
    let console: Console
    var total = 0, first = 0, current = 0
    var started = DispatchTime.now().uptimeNanoseconds
    var lastLine: UInt64 = 0
    /// Seconds between plain lines (and JSON records) when not drawing a bar.
    public var interval = 10.0

    /// - Parameter unit: what is counted (`step`, `image`).
    public init(unit: String = "step", options o: ConsoleOptions = ConsoleOptions()) {
        self.unit = unit
        console = Console(o)
        mode = o.quiet ? .silent : o.json ? .json : Self.isTerminal ? .bar : .lines
    }

    /// Starts counting towards `total`, resuming at `done`.
    public func start(total: Int, at done: Int = 0) {
        self.total = total
        first = done
        current = done
        started = DispatchTime.now().uptimeNanoseconds
        lastLine = started
    }

    /// Rate (per second since start) and seconds left.
    func rateAndETA(now: UInt64) -> (rate: Double, eta: Double) {
        let seconds = Double(now - started) / 1e9
        let rate = Double(current - first) / max(seconds, 1e-9)
        return (rate, rate > 0 ? Double(total - current) / rate : 0)
    }

    /// Marks `done` items finished; `detail` is shown after the counts (e.g. the loss).
    public func update(_ done: Int, detail: String = "") {
        current = done
        let now = DispatchTime.now().uptimeNanoseconds
        let (rate, eta) = rateAndETA(now: now)
        let perItem = rate > 0 ? 1 / rate : 0
        let speed = rate >= 1 ? String(format: "%.2f %@s/s", rate, unit) : String(format: "%.2f s/%@", perItem, unit)
        let counts = "\(unit) \(done)/\(total)" + (detail.isEmpty ? "" : "  " + detail)
        switch mode {
        case .silent:
            return
        case .bar:
            let width = 24, filled = total > 0 ? min(width, width * done / total) : 0
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            Console.writeError(Self.clearLine + "\(bar) \(counts)  \(speed)  ETA \(Self.duration(eta))")
        case .lines, .json:
            guard Double(now - lastLine) / 1e9 >= interval || done == total else { return }
            lastLine = now
            if mode == .json {
                Console.writeError(
                    Console.jsonLine([
                        "event": "progress", "unit": unit, "done": done, "total": total,
                        "per_second": rate, "eta_seconds": eta.rounded()
                    ]))
            } else {
                Console.writeError("\(counts)  \(speed)  ETA \(Self.duration(eta))\n")
            }
        }
    }

    /// Training: step and loss.
    public func update(step: Int, loss: Double) { update(step, detail: String(format: "loss %.4f", loss)) }

    /// Training: a validation result, as a log line.
    public func report(step: Int, metrics: [String: Double], keys: [String]) {
        let parts = keys.compactMap { k in metrics[k].map { String(format: "%@ %.4f", k, $0) } }
        var logger = console.logger
        for k in keys { if let v = metrics[k] { logger[metadataKey: k] = "\(v)" } }
        logger.info("validation at step \(step): \(parts.joined(separator: "  "))")
    }

    /// Ends the bar's line.
    public func finish() { if mode == .bar { Console.writeError("\n") } }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
