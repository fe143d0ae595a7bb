import ArgumentParser
import Foundation
import TesseraInference

/// `tessera inspect`: lists what each file holds, or why it cannot be read; exits non-zero if any failed.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show image headers (size, channels, bit depth, format) or safetensors contents.",
        discussion: "Every image is decoded in full, so damaged pixel data is reported too. Bad files are "
            + "reported and the others go on; the exit status is non-zero if any failed (--strict stops at the first).")

    @Argument(help: "Files or folders (PNG, JPEG and safetensors files inside folders).")
    var paths: [String]

    @Flag(help: "Descend into sub-folders.")
    var recursive = false

    @Flag(help: "Stop at the first file that cannot be read.")
    var strict = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let (reports, files) = try Inspection.inspect(paths, recursive: recursive, strict: strict) { report in
            guard !json else { return }
            let text = report.lines.joined(separator: "\n")
            if report.failed { FileHandle.standardError.write(Data((text + "\n").utf8)) } else { print(text) }
        }
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: reports.map(\.json), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        let failures = reports.filter(\.failed).count
        if failures > 0 {
            let skipped = files - reports.count
            FileHandle.standardError.write(
                Data(
                    ("\(failures) of \(files) files could not be read"
                        + (skipped > 0 ? " (--strict: stopped at the first, \(skipped) not checked)" : "") + "\n").utf8)
            )
            throw ExitCode(1)
        }
    }
}
