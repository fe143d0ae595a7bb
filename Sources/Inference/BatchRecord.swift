import Foundation
import TesseraData
import TesseraEngine

/// What happened to one input of a batch run.
public enum BatchStatus: String, Codable, Sendable {
    /// Computed by this run.
    case done
    /// All outputs were already there (an earlier, possibly killed, run); not recomputed.
    case existing
    case failed
}

/// One input's line in a batch report.
public protocol BatchRecord: Codable, Sendable {
    init(path: String, status: BatchStatus)
    var path: String { get }
    var status: BatchStatus { get set }
    var seconds: Double { get set }
    var error: String? { get set }
}

/// How a batch run's inputs ended, counted once: `report.json`'s summary, the runs' summaries, the command's last
/// line and `report.html` all read these.
public struct BatchCounts: Equatable, Sendable {
    public let images, done, existing, failed: Int
    /// Seconds of computation per processed input (nil when none was processed).
    public let secondsPerImage: Double?

    public init<Record: BatchRecord>(_ records: [Record]) {
        let processed = records.filter { $0.status == .done }
        images = records.count
        done = processed.count
        existing = records.filter { $0.status == .existing }.count
        failed = records.filter { $0.status == .failed }.count
        secondsPerImage = done > 0 ? processed.map(\.seconds).reduce(0, +) / Double(done) : nil
    }
}
