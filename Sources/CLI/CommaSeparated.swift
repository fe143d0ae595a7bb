import ArgumentParser
import TesseraInference

/// Comma-separated option values, parsed by argument-parser's `transform:`: a bad value is a usage error naming the
/// option, before anything runs.
enum CommaSeparated {
    static func strings(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Numbers (finite, for floating-point types).
    static func numbers<T: LosslessStringConvertible>(_ text: String) throws -> [T] {
        let values = strings(text).map { T($0) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }),
            values.allSatisfy({ ($0 as? any BinaryFloatingPoint).map { $0.isFinite } ?? true })
        else {
            throw ValidationError("takes finite numbers separated by commas, got '\(text)'")
        }
        return values.compactMap { $0 }
    }

    /// Cases of a closed set, each named by its raw value.
    static func choices<E: CaseIterable & RawRepresentable & Hashable>(_ text: String) throws -> Set<E>
    where E.RawValue == String {
        try Set(
            strings(text).map { name in
                guard let value = E(rawValue: name) else {
                    throw ValidationError(
                        "takes \(E.allCases.map(\.rawValue).joined(separator: ", ")), comma-separated; not '\(name)'")
                }
                return value
            })
    }
}

extension Shard: ExpressibleByArgument {
    /// `i/n`, as `--shard` takes it.
    public init?(argument: String) { self.init(argument) }
}
