/// The options of one stage (`segment`, `explain`, `eval`, `train`), in the order the help and the README list
/// them. Built on demand from the stage's declarations (no process-wide state).
public struct OptionTable<Options> {
    /// The stage's name: the pipeline section of its keys (unless an option names its own) and the command.
    public let stage: String
    public let options: [OptionSpec<Options>]

    public init(stage: String, _ options: [OptionSpec<Options>]) {
        self.stage = stage
        self.options = options
    }

    /// Two tables' options as one (a stage that takes a shared group).
    public static func + (a: Self, b: [OptionSpec<Options>]) -> Self { Self(stage: a.stage, a.options + b) }

    /// The option with pipeline key `key`.
    public subscript(key: String) -> OptionSpec<Options>? { options.first { $0.key == key } }

    /// The option's help as the command line prints it (the range or set appended); a key the table does not
    /// have gives its name, which the command-line tests catch.
    public func help(_ key: String) -> String { self[key]?.fullHelp ?? key }

    /// The pipeline section of an option.
    public func section(of option: OptionSpec<Options>) -> String { option.section ?? stage }

    /// The options of pipeline section `section`.
    public func pipelineKeys(in section: String) -> [OptionSpec<Options>] {
        options.filter { $0.inPipeline && self.section(of: $0) == section }
    }

    /// The first value in `options` that its option refuses, as an error naming the option.
    public func validate(_ values: Options) throws {
        for option in options {
            if let reason = option.problem(in: values) { throw OptionError(option: option.key, reason: reason) }
        }
    }
}

/// An option whose value a run refuses: `tile must be 1-65536, is 0`. The command line says the same reason after
/// the flag (`--tile`), the pipeline file after the key (`segment.tile`).
public struct OptionError: Error, CustomStringConvertible {
    public let option: String
    public let reason: String
    public init(option: String, reason: String) {
        self.option = option
        self.reason = reason
    }
    public var description: String { "\(option) \(reason)" }
}
