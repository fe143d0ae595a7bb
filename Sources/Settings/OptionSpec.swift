/// One option of a stage, declared once: its pipeline key, command-line flag, the values it takes, its help and
/// where it lands in the stage's options. The command line takes its help from here and is tested against it; the
/// pipeline schema reads YAML values through `set`; the stage's `validate()` checks every value with `problem`.
public struct OptionSpec<Options> {
    /// The pipeline key (`seed_depth`).
    public let key: String
    /// The command-line flag (`--seed-depth`).
    public let flag: String
    public let kind: OptionKind
    public let help: String
    /// The pipeline section of a key when a stage spans several (training: `ingest`, `model`, `train`).
    public var section: String?
    /// Whether the pipeline file has the key (a batch's shard or failure policy is a command-line matter).
    public var inPipeline = true
    /// A key this one applies under: given without it, a pipeline file is refused.
    public var requires: String?
    let read: (inout Options, String) throws -> Void
    let check: (Options) -> String?
    let show: (Options) -> String?

    /// An option of `kind` reading text with `read`, checking the current value with `check` and showing it
    /// (for defaults) with `show`; the builders below cover the usual value types.
    public init(
        _ key: String, flag: String? = nil, kind: OptionKind, help: String,
        read: @escaping (inout Options, String) throws -> Void, check: @escaping (Options) -> String? = { _ in nil },
        show: @escaping (Options) -> String? = { _ in nil }
    ) {
        self.key = key
        self.flag = flag ?? "--" + key.replacingUnderscores()
        self.kind = kind
        self.help = help
        self.read = read
        self.check = check
        self.show = show
    }

    /// Sets the option from text (a command-line word, a YAML scalar, a YAML list joined by commas) and checks
    /// the value (`OptionProblem` when it is refused).
    public func set(_ text: String, in options: inout Options) throws {
        try read(&options, text)
        if let reason = check(options) { throw OptionProblem(reason) }
    }

    /// Sets the option from text without checking the value's range (what a caller that builds options in code
    /// can do; the run's `validate()` then refuses it).
    public func assign(_ text: String, in options: inout Options) throws {
        try read(&options, text)
    }

    /// What is wrong with the option's value in `options` (nil: nothing).
    public func problem(in options: Options) -> String? { check(options) }

    /// The option's value in `options` as text (nil: unset).
    public func value(in options: Options) -> String? { show(options) }

    /// The help with the range or set appended: what the command line prints.
    public var fullHelp: String { kind.summary.map { "\(help) Takes \($0)." } ?? help }

    /// The same option with the pipeline `section` set.
    public func inSection(_ section: String) -> Self {
        var s = self
        s.section = section
        return s
    }

    /// The same option, for the command line only.
    public var commandLineOnly: Self {
        var s = self
        s.inPipeline = false
        return s
    }

    /// The same option, applying only when `key` is given.
    public func requiring(_ key: String) -> Self {
        var s = self
        s.requires = key
        return s
    }

    /// The option on a part of wider options (a shared group, as the object rules of `segment` and `eval`).
    public func lifted<Wider>(_ part: WritableKeyPath<Wider, Options>) -> OptionSpec<Wider> {
        var s = OptionSpec<Wider>(
            key, flag: flag, kind: kind, help: help, read: { try read(&$0[keyPath: part], $1) },
            check: { check($0[keyPath: part]) }, show: { show($0[keyPath: part]) })
        s.section = section
        s.inPipeline = inPipeline
        s.requires = requires
        return s
    }
}

/// A value an option refuses, and why (`must be 1-65536, is 0`): the command line, the pipeline file and the run
/// each put their own name for the option in front of the same reason.
public struct OptionProblem: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
