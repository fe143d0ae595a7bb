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
