import ArgumentParser
import Foundation
import TesseraCLI
import TesseraCheckpoint
import TesseraExplain
import TesseraInference
import TesseraRun
import TesseraSettings
import TesseraTraining
import TestSupport
import XCTest

/// One stage's option table, its type erased, with the three places a value enters: the command line (in this
/// process), the pipeline file and the run built in code.
struct StageTable {
    struct Entry {
        let key, flag, help: String
        let kind: OptionKind
        let section: String?
        let requires: String?
        let defaultText: String?
        /// The option's value in the defaults set from `text` without a range check, then the run's refusal
        /// (its description), or the reason `text` cannot even be held.
        let runRefusal: (String) -> Result<String?, OptionProblem>
    }

    let command: String
    /// Arguments the command needs besides the option under test.
    let required: [String]
    /// Command-line arguments that are not in the table (the command's own: model, output folder, ...).
    let commandOnly: Set<String>
    let entries: [Entry]

    init<Options>(
        command: String, required: [String], commandOnly: Set<String>, table: OptionTable<Options>,
        defaults: Options, run: @escaping (Options) throws -> Void
    ) {
        self.command = command
        self.required = required
        self.commandOnly = commandOnly
        entries = table.options.map { option in
            Entry(
                key: option.key, flag: option.flag, help: option.fullHelp, kind: option.kind,
                section: option.inPipeline ? table.section(of: option) : nil, requires: option.requires,
                defaultText: option.value(in: defaults),
                runRefusal: { text in
                    var o = defaults
                    do { try option.assign(text, in: &o) } catch {
                        return .failure(error as? OptionProblem ?? OptionProblem("\(error)"))
                    }
                    do {
                        try run(o)
                        return .success(nil)
                    } catch {
                        return .success("\(error)")
                    }
                })
        }
    }

    /// Every stage with an option table.
    static var all: [StageTable] {
        let nowhere = URL(fileURLWithPath: "/nonexistent/model.safetensors")
        let out = URL(fileURLWithPath: "/nonexistent/out")
        return [
            StageTable(
                command: "segment", required: ["in", "--model", "m", "--out", "o"],
                commandOnly: ["model", "out", "inputs", "quiet", "json", "log-level"], table: SegmentOptions.table,
                defaults: SegmentOptions.defaults,
                run: { _ = try SegmentRun(checkpoint: nowhere, options: $0, out: out) }
            ),
            StageTable(
                command: "explain", required: ["in", "--model", "m", "--out", "o"],
                commandOnly: ["model", "out", "inputs", "quiet", "json", "log-level"], table: ExplainOptions.table,
                defaults: ExplainOptions.defaults, run: { _ = try ExplainRun(model: nowhere, options: $0, out: out) }),
            StageTable(
                command: "classify", required: ["in", "--model", "m", "--out", "o"],
                commandOnly: ["model", "out", "inputs", "quiet", "json", "log-level"], table: ClassifyOptions.table,
                defaults: ClassifyOptions.defaults,
                run: { _ = try ClassifyRun(checkpoint: nowhere, options: $0, out: out) }),
            StageTable(
                command: "eval", required: ["--model", "m", "--images", "i", "--masks", "k"],
                commandOnly: ["model", "task", "images", "masks", "quiet", "json", "log-level"],
                table: EvalOptions.table,
                defaults: EvalOptions.defaults,
                run: {
                    _ = try Evaluation.run(checkpoint: nowhere, images: out, masks: out, options: $0)
                }),
            StageTable(
                command: "train", required: ["--images", "i", "--masks", "k", "--out", "o"],
                commandOnly: ["out", "resume", "stop-after", "sync-bn", "quiet", "json", "log-level"],
                table: TrainingConfig.table, defaults: TrainingConfig(images: "i", masks: "k"),
                run: { try $0.validate() })
        ]
    }

    /// A pipeline file with `key: value` in its section, and whatever the section needs besides.
    func yaml(_ entry: Entry, _ value: String) -> String? {
        guard let section = entry.section else { return nil }
        let needs = entry.requires.map { "  \($0): components\n" } ?? ""
        switch section {
        case "segment", "explain", "classify":
            return "\(section):\n  inputs: [in]\n  model: m\n\(needs)  \(entry.key): \(value)\n"
        default:
            let ingest = "ingest:\n  images: i\n  masks: k\n"
            return section == "ingest"
                ? ingest + "  \(entry.key): \(value)\n" : ingest + "\(section):\n\(needs)  \(entry.key): \(value)\n"
        }
    }
}

/// The option tables are the one declaration of every option: the command line, the pipeline schema, the run's
/// `validate()` and the README are derived from them or tested against them here.
final class OptionTableTests: XCTestCase {
    func usageError(_ arguments: [String]) -> String? {
        do {
            _ = try Tessera.parseAsRoot(arguments)
            return nil
        } catch {
            return Tessera.message(for: error)
        }
    }

    func pipelineError(_ yaml: String) -> PipelineError? {
        do {
            _ = try PipelineReader(file: "t.yaml").parse(yaml, name: "t", checkPaths: false)
            return nil
        } catch {
            return error as? PipelineError
        }
    }

    /// Values just outside each option's range (both ends, open ends at the bound itself).
    static func outOfRange(_ kind: OptionKind) -> [String] {
        func numbers(_ r: NumberRange) -> [String] {
            [r.lowerOpen ? r.lower : r.lower - 1, r.upperOpen ? r.upper : r.upper + 1].filter {
                $0.isFinite && abs($0) < 1e300
            }.map { "\($0)" }
        }
        switch kind {
        case .integer(let r, let step):
            var values: [String] = []
            if r.lowerBound > Int.min { values.append("\(r.lowerBound - 1)") }
            if r.upperBound < Int.max { values.append("\(r.upperBound + 1)") }
            if step > 1 { values.append("\(r.lowerBound + 1)") }
            return values
        case .number(let r): return numbers(r)
        case .numbers(let r): return numbers(r).map { "1,\($0)" }
        case .integers(let count, let r):
            let n = count ?? 2
            return [
                ([r.lowerBound - 1] + [Int](repeating: 1, count: n - 1)),
                ([Int](repeating: 1, count: n - 1) + [r.upperBound + 1]),
                [Int](repeating: 0, count: n)
            ].map { $0.map(String.init).joined(separator: ",") }
        case .choice, .choices: return ["nonsense"]
        case .flag, .text, .texts, .path: return []
        }
    }

    /// For every option of every table and every value out of its range: the command line, the pipeline key and
    /// the run refuse it, each with the same reason after its own name for the option.
    func testEveryLayerRefusesAValueOutOfRangeWithTheSameReason() throws {
        var checked = 0
        for stage in StageTable.all {
            for entry in stage.entries {
                for value in Self.outOfRange(entry.kind) {
                    let what = "\(stage.command) \(entry.key)=\(value)"
                    let cli = usageError([stage.command] + stage.required + ["\(entry.flag)=\(value)"])
                    let yaml = stage.yaml(entry, value.contains(",") ? "[\(value)]" : value).flatMap(pipelineError)
                    switch entry.runRefusal(value) {
                    case .failure(let problem):
                        // The value's type cannot hold it (a closed set's stranger, a negative seed): the run
                        // cannot be given it, and the other two refuse it.
                        XCTAssertNotNil(cli, "\(what): the command line accepted it")
                        if stage.yaml(entry, value) != nil {
                            XCTAssertEqual(yaml?.reason, problem.reason, what)
                        }
                        if case .choice(let names) = entry.kind {
                            for name in names { XCTAssertTrue(cli?.contains(name) ?? false, "\(what): \(cli ?? "")") }
                        }
                    case .success(let run):
                        let run = try XCTUnwrap(run, "\(what): the run accepted it")
                        // The run's error is `key reason`; the other layers give the same reason.
                        XCTAssertTrue(run.hasPrefix(entry.key + " "), "\(what): \(run)")
                        let reason = String(run.dropFirst(entry.key.count + 1))
                        XCTAssertTrue(
                            (cli?.contains(entry.flag) ?? false) && (cli?.contains(reason) ?? false),
                            "\(what): \(cli ?? "accepted"), not \(reason)")
                        if stage.yaml(entry, value) != nil {
                            XCTAssertEqual(yaml?.reason, reason, "\(what): \(String(describing: yaml))")
                            XCTAssertEqual(yaml?.key, "\(entry.section ?? "").\(entry.key)", what)
                        }
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }

    /// The values each range holds pass every layer (the ends of closed ranges), so the ranges are not stricter
    /// in one place than another.
    func testTheEndsOfEachRangePass() {
        for stage in StageTable.all {
            for entry in stage.entries {
                guard case .integer(let r, let step) = entry.kind else { continue }
                for v in [r.lowerBound, r.upperBound / step * step] where v != Int.max {
                    let value = "\(v)"
                    if case .success(let refusal) = entry.runRefusal(value), let refusal, refusal.hasPrefix(entry.key) {
                        XCTFail("\(stage.command) \(entry.key)=\(value): the run refused it: \(refusal)")
                    }
                    let cli = usageError([stage.command] + stage.required + ["\(entry.flag)=\(value)"])
                    XCTAssertNil(cli, "\(stage.command) \(entry.flag)=\(value)")
                }
            }
        }
    }

    /// The command line has exactly the table's options (plus the command's own), each with the table's help and
    /// default: from argument-parser's own description of the command.
    func testTheCommandLineIsTheTable() throws {
        for stage in StageTable.all {
            let dump = try XCTUnwrap(usageError([stage.command, "--experimental-dump-help"]))
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any])
            let command = try XCTUnwrap(json["command"] as? [String: Any])
            let arguments = try XCTUnwrap(command["arguments"] as? [[String: Any]])
            var byName: [String: [String: Any]] = [:]
            for a in arguments {
                let name = (a["preferredName"] as? [String: Any])?["name"] as? String ?? a["valueName"] as? String ?? ""
                byName[name] = a
            }
            let tableNames = Set(stage.entries.map { String($0.flag.dropFirst(2)) })
            // An inverted flag (`--flips/--no-flips`) is listed under both names.
            let cliNames = Set(
                byName.keys.map {
                    $0.hasPrefix("no-") && byName[String($0.dropFirst(3))] != nil ? String($0.dropFirst(3)) : $0
                }
            )
            .subtracting(stage.commandOnly).subtracting(["help", "version"])
            XCTAssertEqual(cliNames.subtracting(tableNames), [], "\(stage.command): options not in the table")
            XCTAssertEqual(tableNames.subtracting(cliNames), [], "\(stage.command): table options missing")
            for entry in stage.entries {
                guard let a = byName[String(entry.flag.dropFirst(2))] else { continue }
                XCTAssertEqual(a["abstract"] as? String, entry.help, "\(stage.command) \(entry.flag)")
                if let shown = a["defaultValue"] as? String, a["kind"] as? String == "option" {
                    XCTAssertEqual(shown, entry.defaultText, "\(stage.command) \(entry.flag) default")
                }
            }
        }
    }

    /// Whether `text` names `flag` (followed by neither a letter nor a dash: `--seed` is not `--seed-depth`).
    static func mentions(_ text: String, _ flag: String) -> Bool {
        var rest = Substring(text)
        while let r = rest.range(of: flag) {
            let next = rest[r.upperBound...].first
            if !(next.map { $0.isLetter || $0 == "-" } ?? false) { return true }
            rest = rest[r.upperBound...]
        }
        return false
    }

    /// The README lists every option of each command in that command's row, each closed set's names as a set
    /// equal to the table's (a list that drops or adds a name fails), and the pipeline key table has exactly the
    /// schema's keys per section.
    func testTheREADMEListsAreTheTables() throws {
        let readme = try String(
            contentsOf: SharedFixtures.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = readme.split(separator: "\n").map(String.init)
        for stage in StageTable.all {
            let row = try XCTUnwrap(
                lines.first { $0.hasPrefix("| `tessera \(stage.command) ") }, "no README row for \(stage.command)")
            for entry in stage.entries {
                let names =
                    entry.kind == .flag && entry.defaultText == "true"
                    ? ["--no-" + entry.flag.dropFirst(2)] : [entry.flag]
                XCTAssertTrue(
                    names.contains { Self.mentions(row, $0) }, "README's \(stage.command) row does not list \(names[0])"
                )
                let choices: [String]
                switch entry.kind {
                case .choice(let n), .choices(let n): choices = n
                default: continue
                }
                var listed = Set<String>()
                var rest = Substring(row)
                while let r = rest.range(of: "`\(entry.flag) ") {
                    let after = rest[r.upperBound...]
                    let token = after.prefix { $0 != "`" && $0 != " " }
                    listed.formUnion(
                        token.replacingOccurrences(of: "\\|", with: ",").split(separator: ",").map(String.init))
                    rest = after
                }
                XCTAssertEqual(listed, Set(choices), "README's \(stage.command) row lists \(entry.flag) as \(listed)")
            }
        }
        // The pipeline key table: `| section | keys |`, the keys in backticks.
        for (section, keys) in PipelineReader.sections where !section.isEmpty {
            let row = try XCTUnwrap(lines.first { $0.hasPrefix("| `\(section)` |") }, "no README row for \(section)")
            let cell = row.dropFirst("| `\(section)` |".count)
            let listed = cell.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map {
                String($0.element)
            }
            XCTAssertEqual(Set(listed), Set(keys), "README's pipeline row for \(section)")
        }
    }
}
