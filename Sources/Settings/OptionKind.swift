/// The values an option takes, stated once: the command line's help, the pipeline schema's checks, a run's
/// `validate()` and the README's lists all read it, so a value has one range everywhere.
public enum OptionKind: Sendable, Equatable {
    /// A whole number in a range (and a multiple of `step`).
    case integer(ClosedRange<Int>, step: Int)
    /// A finite number in a range.
    case number(NumberRange)
    /// true or false (a flag on the command line).
    case flag
    /// One name of a closed set.
    case choice([String])
    /// Names of a closed set, comma-separated (a list in YAML).
    case choices([String])
    /// `count` whole numbers, comma-separated, each in a range (nil count: any number of them, at least one).
    case integers(count: Int?, ClosedRange<Int>)
    /// Finite numbers, comma-separated, each in a range.
    case numbers(NumberRange)
    /// Free text.
    case text
    /// Texts, comma-separated.
    case texts
    /// A file or folder.
    case path

    /// The range or set as the help and the README state it (`1-65536`, `[0, 1)`, `gaussian|constant`).
    public var summary: String? {
        switch self {
        case .integer(let r, let step): return (step > 1 ? "a multiple of \(step) in " : "") + Self.text(r)
        case .number(let r): return r.description
        case .choice(let names), .choices(let names): return names.joined(separator: "|")
        case .integers(_, let r): return "each " + Self.text(r)
        case .numbers(let r): return "each in \(r)"
        case .flag, .text, .texts, .path: return nil
        }
    }

    /// `1-65536`, or `0 or more` for a range open above.
    static func text(_ r: ClosedRange<Int>) -> String {
        if r.upperBound == Int.max { return "\(r.lowerBound) or more" }
        return "\(r.lowerBound)-\(r.upperBound)"
    }

    /// Why an integer is refused (nil: accepted).
    public static func problem(_ v: Int, in r: ClosedRange<Int>, step: Int = 1) -> String? {
        guard !r.contains(v) || (step > 1 && v % step != 0) else { return nil }
        return "must be \(step > 1 ? "a multiple of \(step) in " : "")\(text(r)), is \(v)"
    }
}

/// A range of finite numbers whose ends may be open: `[0, 1)`, `(0, 10]`.
public struct NumberRange: Sendable, Equatable, CustomStringConvertible {
    public let lower: Double, upper: Double
    public let lowerOpen: Bool, upperOpen: Bool

    public init(_ lower: Double, _ upper: Double, lowerOpen: Bool = false, upperOpen: Bool = false) {
        self.lower = lower
        self.upper = upper
        self.lowerOpen = lowerOpen
        self.upperOpen = upperOpen
    }

    /// [lower, upper].
    public static func closed(_ lower: Double, _ upper: Double) -> NumberRange { NumberRange(lower, upper) }
    /// [lower, upper).
    public static func openAbove(_ lower: Double, _ upper: Double) -> NumberRange {
        NumberRange(lower, upper, upperOpen: true)
    }
    /// (lower, upper].
    public static func openBelow(_ lower: Double, _ upper: Double) -> NumberRange {
        NumberRange(lower, upper, lowerOpen: true)
    }

    public func contains(_ v: Double) -> Bool {
        v.isFinite && (lowerOpen ? v > lower : v >= lower) && (upperOpen ? v < upper : v <= upper)
    }

    public var description: String {
        "\(lowerOpen ? "(" : "[")\(Self.text(lower)), \(Self.text(upper))\(upperOpen ? ")" : "]")"
    }

    /// `1`, `0.5`, `1e+06`: whole numbers without a fraction.
    static func text(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : "\(v)"
    }

    /// Why a number is refused (nil: accepted).
    public func problem(_ v: Double) -> String? {
        contains(v) ? nil : "must be a number in \(self), is \(v)"
    }
}
