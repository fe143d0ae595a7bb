/// Why a file could not be read or written: the file and the reason, the one shape every layer that touches files
/// throws (image codecs, safetensors, atomic writes, checkpoints, output records), so a batch reports any of them the
/// same way (`file: reason`) and a caller that already names the file can print the reason alone.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): \(reason)" }
}
