import ArgumentParser
import Foundation
import TesseraEngine

/// `tessera inspect`: lists what a file holds, or why it cannot be read.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors and metadata of safetensors files.")

    @Argument(help: "Files to inspect.")
    var files: [String]

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        var failures = 0
        var reports: [[String: Any]] = []
        for path in files {
            do {
                let file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path))
                if json {
                    reports.append([
                        "file": path, "format": "safetensors", "metadata": file.metadata,
                        "tensors": file.entries.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape] },
                    ])
                } else {
                    print("\(path): safetensors, \(file.entries.count) tensors")
                    for (k, v) in file.metadata.sorted(by: { $0.key < $1.key }) {
                        print("  metadata \(k) = \(v.count > 120 ? String(v.prefix(117)) + "..." : v)")
                    }
                    for e in file.entries { print("  \(e.name)  \(e.dtype.rawValue)  \(e.shape)") }
                }
            } catch {
                failures += 1
                if json { reports.append(["file": path, "error": "\(error)"]) }
                else { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: reports, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
