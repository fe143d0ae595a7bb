import CYaml
import Foundation

/// Refuses what could make a small pipeline file expensive before Yams composes it: anchors and aliases (an
/// alias bomb of 30 nested anchors stands for 2^30 nodes; Yams hashes an alias used as a mapping key in full) and
/// documents of more than `maximumNodes` nodes. It reads the events of the libyaml parser that Yams itself runs,
/// so a plain scalar holding a quote (`x: [a', &a [1,2], *a]`) cannot hide an anchor from it as from a scanner.
enum YAMLEventGuard {
    /// More nodes than any pipeline needs (a pipeline has about a hundred) and few enough to compose in
    /// milliseconds.
    static let maximumNodes = 10_000

    struct Violation: Error {
        let line: Int, column: Int
        let reason: String
    }

    /// Throws the first anchor, alias or node past the cap, with its line and column (1-based); YAML syntax errors
    /// are left for Yams to report.
    static func check(_ text: String) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var nodes = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
                var anchored = false
                switch event.type {
                case YAML_STREAM_END_EVENT: return
                case YAML_ALIAS_EVENT:
                    throw Violation(
                        line: line, column: column, reason: "YAML aliases are not accepted in pipeline files")
                case YAML_SCALAR_EVENT: anchored = event.data.scalar.anchor != nil; nodes += 1
                case YAML_SEQUENCE_START_EVENT: anchored = event.data.sequence_start.anchor != nil; nodes += 1
                case YAML_MAPPING_START_EVENT: anchored = event.data.mapping_start.anchor != nil; nodes += 1
                default: break
                }
                if anchored {
                    throw Violation(
                        line: line, column: column, reason: "YAML anchors are not accepted in pipeline files")
                }
                if nodes > maximumNodes {
                    throw Violation(line: line, column: column, reason: "more than \(maximumNodes) YAML nodes")
                }
            }
        }
    }
}
