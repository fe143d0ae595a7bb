import Foundation
import Logging

/// How commands talk to the terminal: a log level, `--quiet`, and `--json` (JSON lines on standard error).
public struct ConsoleOptions: Sendable {
    public var level: Logger.Level = .info
    /// No progress, only errors (and the final result on standard output unless also quiet there).
    public var quiet = false
    /// Log records and progress as JSON lines; commands print their result as one JSON object.
    public var json = false
    public init() {}
}

/// Where a command's messages go: its options and a logger over `ConsoleLogHandler` made from them. A value,
/// passed to the runs that print (no process-wide setting): two runs in one process may log differently.
public struct Console: Sendable {
    public var options: ConsoleOptions

    public init(_ options: ConsoleOptions = ConsoleOptions()) { self.options = options }

    /// Errors only: no progress, no messages (tests, and the quiet ranks of an MPI job).
    public static var quiet: Console {
        var o = ConsoleOptions()
        o.quiet = true
        return Console(o)
    }

    /// Tessera's logger (label `tessera`) at the options' level (errors only when quiet).
    public var logger: Logger {
        let json = options.json
        var l = Logger(label: "tessera") { ConsoleLogHandler(label: $0, json: json) }
        l.logLevel = options.quiet ? max(options.level, .error) : options.level
        return l
    }

    /// A progress reporter in this console's mode.
    public func progress(unit: String = "step") -> ProgressReporter { ProgressReporter(unit: unit, options: options) }

    /// Serialises writes to standard error, which every console in the process shares.
    static let lock = NSLock()

    /// Writes to standard error in one piece (progress and log lines never interleave mid-line).
    static func writeError(_ s: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(Data(s.utf8))
    }

    /// One JSON object as a line.
    static func jsonLine(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// swift-log handler: `warning: message` lines (info plain), or JSON lines with `--json`; clears a progress bar
/// on the terminal before writing.
public struct ConsoleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    /// JSON lines instead of text.
    let json: Bool

    public init(label: String, json: Bool = false) {
        self.label = label
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        if json {
            var object: [String: Any] = ["level": event.level.rawValue, "message": "\(event.message)"]
            for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[k] = "\(v)" }
            Console.writeError(Console.jsonLine(object))
            return
        }
        let prefix = event.level >= .warning ? "\(event.level.rawValue): " : ""
        let extra = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted { $0.key < $1.key }
            .map { " \($0.key)=\($0.value)" }.joined()
        Console.writeError(ProgressReporter.clearLine + prefix + "\(event.message)" + extra + "\n")
    }
}
