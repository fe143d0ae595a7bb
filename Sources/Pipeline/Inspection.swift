import Foundation
import TesseraEngine

/// What `tessera inspect` reports about one file: its contents, or why it cannot be read.
public struct Inspection {
    public let path: String
    public let result: Result<SafeTensorsFile, Error>

    public init(path: String) {
        self.path = path
        result = Result { try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path)) }
    }

    public var failed: Bool { if case .failure = result { return true } else { return false } }

    /// Human-readable lines: a summary, metadata (long values shortened), then one line per tensor.
    public var lines: [String] {
        switch result {
        case .failure(let error):
            return ["\(path): error: \(error)"]
        case .success(let file):
            var out = ["\(path): safetensors, \(file.entries.count) tensors"]
            for (k, v) in file.metadata.sorted(by: { $0.key < $1.key }) {
                out.append("  metadata \(k) = \(v.count > 120 ? String(v.prefix(117)) + "..." : v)")
            }
            for e in file.entries { out.append("  \(e.name)  \(e.dtype.rawValue)  \(e.shape)") }
            return out
        }
    }

    /// A JSON-ready dictionary.
    public var json: [String: Any] {
        switch result {
        case .failure(let error):
            return ["file": path, "error": "\(error)"]
        case .success(let file):
            return ["file": path, "format": "safetensors", "metadata": file.metadata,
                    "tensors": file.entries.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape] }]
        }
    }
}
