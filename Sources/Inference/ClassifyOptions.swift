import Foundation
import TesseraSettings

/// Settings of `tessera classify`, each declared once, with its range, in `ClassifyOptions.table`.
public struct ClassifyOptions: Sendable, BatchPolicy {
    /// Classes kept per image, most probable first (fewer when the model has fewer).
    public var topK = 5
    public var recursive = false
    public var shard: Shard?
    public var overwrite = false
    public var strict = false
    public var recomputeStale = false

    public init() {}

    public static let defaults = ClassifyOptions()

    /// Every option of `tessera classify` and the pipeline's `classify` section.
    public static var table: OptionTable<ClassifyOptions> {
        OptionTable(
            stage: "classify",
            [
                .integer("top_k", \.topK, 1...1000, help: "Classes reported per image, most probable first."),
                .flag("recursive", \.recursive, help: "Descend into sub-folders."),
                Shard.option(\.shard),
                .flag("overwrite", \.overwrite, help: "Recompute outputs that already exist.").commandLineOnly,
                .flag("strict", \.strict, help: "Stop at the first image that cannot be classified.").commandLineOnly
            ])
    }

    public func validate() throws { try Self.table.validate(self) }
}
