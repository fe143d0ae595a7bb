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

/// The process-wide console: its options, and the logger every stage writes through.
public enum Console {
    nonisolated(unsafe) public private(set) static var options = ConsoleOptions()
    nonisolated(unsafe) private static var bootstrapped = false

    /// Tessera's logger (label `tessera`).
    public static var logger: Logger {
        var l = Logger(label: "tessera")
        l.logLevel = options.quiet ? max(options.level, .error) : options.level
        return l
    }

    /// Installs `ConsoleLogHandler` as swift-log's backend (once per process) with these options.
    public static func configure(_ new: ConsoleOptions) {
        options = new
        if !bootstrapped {
            bootstrapped = true
            LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label) }
        }
    }

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

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        if Console.options.json {
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
