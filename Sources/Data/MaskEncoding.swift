import Foundation

/// How a training run reads its masks, as `--mask-kind` and a pipeline's `mask_kind` name it: one of the named
/// `MaskKind`s, or `auto` (0/255 masks are binary, anything else a label image).
public enum MaskEncoding: String, Codable, CaseIterable, Sendable {
    case auto, binary, label, palette

    /// The kind it names; nil for `auto`, which the masks decide.
    public var kind: MaskKind? { MaskKind(name: rawValue) }
}
