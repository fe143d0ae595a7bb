import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine

extension CheckpointInfo {
    /// How the masks this model was trained on encode their classes (`info.maskKind`), the decoder of its truth
    /// masks. Checkpoint keeps the name as text (it knows models, not mask files); it is checked here, where the
    /// name becomes a decoder, and a name no decoder knows is refused with the file.
    public func maskKind(file: URL) throws -> MaskKind {
        guard let kind = MaskKind(name: maskKind) else {
            throw FileError(file: file.path, reason: "info.maskKind: unknown mask kind '\(maskKind)'")
        }
        return kind
    }
}
