import Foundation

/// Options of the usual value types, each reading text, checking and showing the value at a key path.
extension OptionSpec {
    /// A whole number (any width: `Int`, `UInt64`) in `range`, a multiple of `step`.
    public static func integer<I: FixedWidthInteger>(
        _ key: String, _ path: WritableKeyPath<Options, I>, _ range: ClosedRange<Int>, step: Int = 1,
        flag: String? = nil, help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .integer(range, step: step), help: help,
            read: {
                guard let v = I(exactly: try Parse.integer($1, range)) else {
                    throw OptionProblem("must be \(OptionKind.text(range)), not '\($1)'")
                }
                $0[keyPath: path] = v
            },
            check: { OptionKind.problem(Int(clamping: $0[keyPath: path]), in: range, step: step) },
            show: { "\($0[keyPath: path])" })
    }

    /// An optional whole number (unset: nil, which always passes).
    public static func integer(
        _ key: String, _ path: WritableKeyPath<Options, Int?>, _ range: ClosedRange<Int>, flag: String? = nil,
        help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .integer(range, step: 1), help: help,
            read: { $0[keyPath: path] = try Parse.integer($1, range) },
            check: { $0[keyPath: path].flatMap { OptionKind.problem($0, in: range) } },
            show: { $0[keyPath: path].map { "\($0)" } })
    }

    /// A finite number (`Double` or `Float`) in `range`.
    public static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(
        _ key: String, _ path: WritableKeyPath<Options, F>, _ range: NumberRange, flag: String? = nil, help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .number(range), help: help,
            read: { $0[keyPath: path] = F(try Parse.number($1, range)) },
            check: { range.problem(Double($0[keyPath: path])) }, show: { "\($0[keyPath: path])" })
    }

    /// An optional finite number.
    public static func number(
        _ key: String, _ path: WritableKeyPath<Options, Double?>, _ range: NumberRange, flag: String? = nil,
        help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .number(range), help: help,
            read: { $0[keyPath: path] = try Parse.number($1, range) },
            check: { $0[keyPath: path].flatMap { range.problem($0) } }, show: { $0[keyPath: path].map { "\($0)" } })
    }

    /// true or false.
    public static func flag(_ key: String, _ path: WritableKeyPath<Options, Bool>, flag: String? = nil, help: String)
        -> Self
    {
        Self(
            key, flag: flag, kind: .flag, help: help, read: { $0[keyPath: path] = try Parse.bool($1) },
            show: { "\($0[keyPath: path])" })
    }

    /// One case of a closed set, named by its raw value.
    public static func choice<E: CaseIterable & RawRepresentable>(
        _ key: String, _ path: WritableKeyPath<Options, E>, flag: String? = nil, help: String
    ) -> Self where E.RawValue: LosslessStringConvertible {
        Self(
            key, flag: flag, kind: .choice(Parse.names(E.self)), help: help,
            read: { $0[keyPath: path] = try Parse.choice($1, E.self) }, show: { "\($0[keyPath: path].rawValue)" })
    }

    /// One case of a closed set, or unset.
    public static func choice<E: CaseIterable & RawRepresentable>(
        _ key: String, _ path: WritableKeyPath<Options, E?>, flag: String? = nil, help: String
    ) -> Self where E.RawValue: LosslessStringConvertible {
        Self(
            key, flag: flag, kind: .choice(Parse.names(E.self)), help: help,
            read: { $0[keyPath: path] = try Parse.choice($1, E.self) },
            show: { $0[keyPath: path].map { "\($0.rawValue)" } })
    }

    /// Cases of a closed set, comma-separated; with `allowsEmpty`, none is a value too (an opt-in list such as
    /// `--metrics`, whose default is nothing).
    public static func choices<E: CaseIterable & RawRepresentable & Hashable>(
        _ key: String, _ path: WritableKeyPath<Options, Set<E>>, flag: String? = nil, allowsEmpty: Bool = false,
        help: String
    ) -> Self where E.RawValue: LosslessStringConvertible {
        Self(
            key, flag: flag, kind: .choices(Parse.names(E.self)), help: help,
            read: { $0[keyPath: path] = Set(try Parse.list($1).map { try Parse.choice($0, E.self) }) },
            check: { !allowsEmpty && $0[keyPath: path].isEmpty ? "names nothing" : nil },
            show: { o in
                E.allCases.filter { o[keyPath: path].contains($0) }.map { "\($0.rawValue)" }.joined(separator: ",")
            })
    }

    /// Finite numbers, comma-separated, each in `range`, or unset.
    public static func numbers<F: BinaryFloatingPoint & LosslessStringConvertible>(
        _ key: String, _ path: WritableKeyPath<Options, [F]?>, _ range: NumberRange, flag: String? = nil,
        help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .numbers(range), help: help,
            read: { $0[keyPath: path] = try Parse.list($1).map { F(try Parse.number($0, range)) } },
            check: { o in
                guard let values = o[keyPath: path] else { return nil }
                if values.isEmpty { return "names no number" }
                return values.lazy.compactMap { range.problem(Double($0)) }.first
            },
            show: { $0[keyPath: path].map { $0.map { "\($0)" }.joined(separator: ",") } })
    }

    /// Free text, or unset.
    public static func text(_ key: String, _ path: WritableKeyPath<Options, String?>, flag: String? = nil, help: String)
        -> Self
    {
        Self(
            key, flag: flag, kind: .text, help: help, read: { $0[keyPath: path] = try Parse.text($1) },
            check: { $0[keyPath: path].map { $0.isEmpty ? "must not be empty" : nil } ?? nil },
            show: { $0[keyPath: path] })
    }

    /// Texts, comma-separated, or unset.
    public static func texts(
        _ key: String, _ path: WritableKeyPath<Options, [String]?>, flag: String? = nil, help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .texts, help: help, read: { $0[keyPath: path] = try Parse.list($1) },
            show: { $0[keyPath: path].map { $0.joined(separator: ",") } })
    }

    /// Texts, comma-separated (empty: none).
    public static func texts(
        _ key: String, _ path: WritableKeyPath<Options, [String]>, flag: String? = nil, help: String
    ) -> Self {
        Self(
            key, flag: flag, kind: .texts, help: help, read: { $0[keyPath: path] = try Parse.list($1) },
            show: { $0[keyPath: path].joined(separator: ",") })
    }

    /// A file or folder by path (its existence is checked where it is used, or by `tessera run --check`).
    public static func path(_ key: String, _ path: WritableKeyPath<Options, String?>, flag: String? = nil, help: String)
        -> Self
    {
        Self(
            key, flag: flag, kind: .path, help: help, read: { $0[keyPath: path] = try Parse.text($1) },
            show: { $0[keyPath: path] })
    }

    /// A required file or folder.
    public static func path(_ key: String, _ path: WritableKeyPath<Options, String>, flag: String? = nil, help: String)
        -> Self
    {
        Self(
            key, flag: flag, kind: .path, help: help, read: { $0[keyPath: path] = try Parse.text($1) },
            check: { $0[keyPath: path].isEmpty ? "must not be empty" : nil }, show: { $0[keyPath: path] })
    }
}

/// Text to values, with the reasons every layer shows.
public enum Parse {
    /// A whole number (its range only named in the reason: `OptionSpec.set` checks it).
    public static func integer(_ text: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let v = Int(text.trimmed) else {
            throw OptionProblem("must be a whole number, \(OptionKind.text(range)), not '\(text)'")
        }
        return v
    }

    /// A finite number (its range only named in the reason).
    public static func number(_ text: String, _ range: NumberRange) throws -> Double {
        guard let v = Double(text.trimmed), v.isFinite else {
            throw OptionProblem("must be a number in \(range), not '\(text)'")
        }
        return v
    }

    public static func bool(_ text: String) throws -> Bool {
        switch text.trimmed.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw OptionProblem("must be true or false, not '\(text)'")
        }
    }

    public static func text(_ text: String) throws -> String {
        guard !text.isEmpty else { throw OptionProblem("must not be empty") }
        return text
    }

    /// Comma-separated items, each trimmed and non-empty.
    public static func list(_ text: String) throws -> [String] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmed }
        guard !items.contains(where: \.isEmpty) else {
            throw OptionProblem("takes items separated by commas, not '\(text)'")
        }
        return items
    }

    static func names<E: CaseIterable & RawRepresentable>(_: E.Type) -> [String]
    where E.RawValue: LosslessStringConvertible {
        E.allCases.map { "\($0.rawValue)" }
    }

    /// A closed set's case by name; the reason lists the names and suggests the closest.
    public static func choice<E: CaseIterable & RawRepresentable>(_ text: String, _: E.Type) throws -> E
    where E.RawValue: LosslessStringConvertible {
        let name = text.trimmed
        if let raw = E.RawValue(name), let value = E(rawValue: raw) { return value }
        let names = Self.names(E.self)
        let hint = suggestion(for: name, in: names).map { " (did you mean '\($0)'?)" } ?? ""
        throw OptionProblem("'\(name)' is not one of \(names.joined(separator: ", "))\(hint)")
    }

    /// The name closest to `word` (edit distance at most 3, and at most half its length), for "did you mean".
    public static func suggestion(for word: String, in names: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            guard !a.isEmpty else { return b.count }
            guard !b.isEmpty else { return a.count }
            var row = Array(0...b.count)
            for i in 1...a.count {
                var previous = row[0]
                row[0] = i
                for j in 1...b.count {
                    let current = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = current
                }
            }
            return row[b.count]
        }
        let scored = names.map { ($0, distance(Array(word), Array($0))) }.min { $0.1 < $1.1 }
        guard let best = scored, best.1 <= max(1, min(3, word.count / 2)) else { return nil }
        return best.0
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}

extension OptionSpec {
    /// A file or folder as a URL, or unset.
    public static func path(_ key: String, _ path: WritableKeyPath<Options, URL?>, flag: String? = nil, help: String)
        -> Self
    {
        Self(
            key, flag: flag, kind: .path, help: help,
            read: { $0[keyPath: path] = URL(fileURLWithPath: try Parse.text($1)) }, show: { $0[keyPath: path]?.path })
    }
}
