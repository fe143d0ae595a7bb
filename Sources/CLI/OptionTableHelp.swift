import ArgumentParser
import TesseraSettings

extension OptionTable {
    /// The option's help for argument-parser, from the table (the range or set appended).
    func argumentHelp(_ key: String) -> ArgumentHelp { ArgumentHelp(help(key)) }

    /// Runs `check` (a stage's `validate()`), turning a refused value into a usage error that names the option's
    /// flag before the reason every layer gives (`--tile must be 1-65536, is 0`).
    func usage(_ check: () throws -> Void) throws {
        do { try check() } catch let error as OptionError {
            throw ValidationError("\(self[error.option]?.flag ?? error.option) \(error.reason)")
        }
    }
}

extension OptionTable {
    /// Parses an option's text through the table into `base` (a value type argument-parser does not know, as a
    /// box), its reason a usage error.
    func parse<Value>(_ text: String, _ key: String, _ path: KeyPath<Options, Value?>, base: Options) throws -> Value {
        var options = base
        do { try self[key]?.set(text, in: &options) } catch let problem as OptionProblem {
            throw ValidationError(problem.reason)
        }
        guard let value = options[keyPath: path] else { throw ValidationError("takes a value") }
        return value
    }
}
