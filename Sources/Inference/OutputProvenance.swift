import Crypto
import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine

/// What made the outputs in a folder: the command, the model file's content hash and every setting that changes
/// an output (tile, overlap, blend, TTA, output kinds, ...). Kept as `provenance.json` beside the outputs, so a
/// finished output is reused only when the same model and settings would make it again: a rerun after more
/// training, or with another tile size, recomputes instead of reporting the old model's masks.
public struct OutputProvenance: Codable, Equatable, Sendable {
    public static let fileName = "provenance.json"

    public var command: String
    /// SHA-256 of the model file's bytes (hex).
    public var modelSHA256: String
    public var settings: [String: String]

    enum CodingKeys: String, CodingKey {
        case command
        case modelSHA256 = "model_sha256"
        case settings
    }

    public init(command: String, model: URL, settings: [String: String]) throws {
        self.command = command
        modelSHA256 = try Self.sha256(of: model)
        self.settings = settings
    }

    /// The SHA-256 of a file's contents, read 4 MiB at a time.
    public static func sha256(of url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw FileError(file: url.path, reason: "cannot read the model file")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The SHA-256 of bytes in memory (hex).
    public static func sha256(of data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The keys whose values differ from `other`'s, each as `key (was A, now B)`.
    public func changes(from other: OutputProvenance) -> [String] {
        var changed: [String] = []
        func short(_ s: String?) -> String { s.map { $0.count > 16 ? String($0.prefix(12)) + "..." : $0 } ?? "unset" }
        if command != other.command { changed.append("command (was \(other.command), now \(command))") }
        if modelSHA256 != other.modelSHA256 {
            changed.append("model_sha256 (was \(short(other.modelSHA256)), now \(short(modelSHA256)))")
        }
        for key in Set(settings.keys).union(other.settings.keys).sorted() where settings[key] != other.settings[key] {
            changed.append("\(key) (was \(short(other.settings[key])), now \(short(settings[key])))")
        }
        return changed
    }

    /// The record in `folder`, nil when there is none.
    /// - Throws: when the file exists but cannot be read as a record (it is then treated as unknown provenance).
    public static func read(in folder: URL) throws -> OutputProvenance? {
        let url = folder.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(OutputProvenance.self, from: Data(contentsOf: url)) } catch {
            throw FileError(file: url.path, reason: "unreadable output record: \(error)")
        }
    }

    public func write(in folder: URL) throws {
        try AtomicFile.write(try JSONEncoder.pretty.encode(self), to: folder.appendingPathComponent(Self.fileName))
    }
}

/// Output files as a batch run finds them.
enum OutputFiles {
    /// Whether every file exists and, for images and safetensors, has a readable header (files appear by rename,
    /// so a readable header means a whole file).
    static func complete(_ urls: [URL]) -> Bool {
        urls.allSatisfy { url in
            guard FileManager.default.fileExists(atPath: url.path) else { return false }
            switch url.pathExtension.lowercased() {
            case "safetensors": return (try? SafeTensorsFile(contentsOf: url)) != nil
            case "png", "jpg", "jpeg": return (try? ImageCodec.info(of: url)) != nil
            case "tif", "tiff": return (try? TIFFFile(url: url)) != nil
            default: return true
            }
        }
    }
}
