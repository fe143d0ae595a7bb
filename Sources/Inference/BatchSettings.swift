import Foundation
import TesseraConsole
import TesseraData
import TesseraEngine

/// Where and how a batch run works: the input list, its shard, the output folder and the failure policy.
public struct BatchSettings: Sendable {
    public var out: URL
    public var recursive = false
    public var shard: Shard?
    /// Recompute inputs whose outputs already exist.
    public var overwrite = false
    /// Stop at the first input that fails.
    public var strict = false
    /// What makes this run's outputs (model hash and settings), recorded beside them; outputs made by another
    /// model or other settings are never reused.
    public var provenance: OutputProvenance?
    /// When the folder holds outputs made otherwise: recompute them (`tessera run`, whose folders are its own), or
    /// stop and say so (the default, unless `overwrite`).
    public var recomputeStale = false
    /// Where failures, per-input lines and progress go.
    public var console = Console()

    public init(out: URL) { self.out = out }

    /// The settings of a run whose options carry the batch policy (`segment`, `explain`).
    public init(out: URL, policy: some BatchPolicy, provenance: OutputProvenance, console: Console) {
        self.out = out
        recursive = policy.recursive
        shard = policy.shard
        overwrite = policy.overwrite
        strict = policy.strict
        recomputeStale = policy.recomputeStale
        self.provenance = provenance
        self.console = console
    }

    /// Report file stem: `report`, or `report-<i>-of-<n>` for a shard (shards share one output folder).
    public var reportStem: String { shard.map { "report-\($0.index)-of-\($0.count)" } ?? "report" }
}

/// A batch run that cannot start, and why.
public struct BatchError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The batch policy a stage's options carry: folders, shard, what to redo, when to stop.
public protocol BatchPolicy {
    var recursive: Bool { get }
    var shard: Shard? { get }
    var overwrite: Bool { get }
    var strict: Bool { get }
    var recomputeStale: Bool { get }
}
