import ArgumentParser
import Foundation
import TesseraPipeline

/// `tessera inspect`: lists what each file holds, or why it cannot be read; exits non-zero if any failed.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show image headers (size, channels, bit depth, format) or safetensors contents.")

    @Argument(help: "Files to inspect.")
    var files: [String]

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let reports = files.map(Inspection.init(path:))
        if json {
            let data = try JSONSerialization.data(withJSONObject: reports.map(\.json), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for r in reports {
                let text = r.lines.joined(separator: "\n")
                if r.failed { FileHandle.standardError.write(Data((text + "\n").utf8)) } else { print(text) }
            }
        }
        let failures = reports.filter(\.failed).count
        if failures > 0 {
            FileHandle.standardError.write(Data("\(failures) of \(reports.count) files could not be read\n".utf8))
            throw ExitCode(1)
        }
    }
}
