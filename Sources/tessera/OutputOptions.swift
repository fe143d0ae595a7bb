import ArgumentParser
import Foundation
import Logging
import TesseraPipeline

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

    /// Sets up the console (swift-log backend, progress mode) for this process.
    func apply() {
        var o = ConsoleOptions()
        o.level = Logger.Level(rawValue: logLevel) ?? .info
        o.quiet = quiet
        o.json = json
        Console.configure(o)
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
        Console.logger.error("\(message)")
        return ExitCode(1)
    }
}
