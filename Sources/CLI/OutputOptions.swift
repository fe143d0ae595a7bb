import ArgumentParser
import Foundation
import Logging
import TesseraConsole
import TesseraInference

/// `--quiet`, `--json` and `--log-level`, shared by the commands that run for a while.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Only errors on standard error; no progress, no result text.") var quiet = false
    @Flag(help: "Print the result as one JSON object; logs and progress become JSON lines on standard error.")
    var json = false
    @Option(help: "Log level: trace, debug (one line per image), info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level takes trace, debug, info, notice, warning, error or critical")
        }
    }

    /// The console these options ask for, handed to the runs that print.
    var console: Console { console(quiet: quiet) }

    /// The console with `quiet` set (the ranks of an MPI job other than 0 are quiet unless debugging).
    func console(quiet: Bool) -> Console {
        var o = ConsoleOptions()
        o.level = Logger.Level(rawValue: logLevel) ?? .info
        o.quiet = quiet
        o.json = json
        return Console(o)
    }

    /// Prints `object` as JSON with --json, else runs `text` unless --quiet.
    func result(_ object: [String: Any], text: () -> Void) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if !quiet {
            text()
        }
    }

    /// Logs a failure summary as an error and exits with status 1.
    func fail(_ message: String) -> ExitCode {
        console.logger.error("\(message)")
        return ExitCode(1)
    }
}

/// What `segment` and `explain` report at the end: `BatchReport.summary`'s counts, as JSON and as a text line.
struct BatchOutcome {
    let images, done, existing, failed: Int
    let secondsPerImage: Double

    init<Record: BatchRecord>(_ records: [Record], seconds: Double) {
        let counts = BatchCounts(records)
        (images, done, existing, failed) = (counts.images, counts.done, counts.existing, counts.failed)
        secondsPerImage = counts.secondsPerImage ?? 0
    }

    func json(out: String) -> [String: Any] {
        [
            "images": images, "done": done, "existing": existing, "failed": failed,
            "seconds_per_image": secondsPerImage,
            "out": out
        ]
    }

    /// `N images: D <verb>, E already done, F failed; S s per image`.
    func line(verb: String) -> String {
        String(
            format: "%d images: %d %@, %d already done, %d failed; %.2f s per image", images, done, verb, existing,
            failed, secondsPerImage)
    }
}
