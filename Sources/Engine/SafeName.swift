import Foundation

/// Names that come from files (class names in a checkpoint, relative paths of inputs) checked before they become
/// part of an output path or a CSV header: a checkpoint naming a class `../../etc/x` must not write outside
/// `--out`, and a control character must not split a report line.
public enum SafeName {
    /// Why `name` cannot be one path component (a class name in `prob/<image>_<class>.png`), or nil.
    public static func problem(component name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name == "." || name == ".." { return "is '\(name)'" }
        if name.contains("/") || name.contains("\\") { return "contains a path separator" }
        if let bad = controlCharacter(in: name) { return "contains the control character U+\(bad)" }
        if name.utf8.count > 200 { return "is longer than 200 bytes" }
        return nil
    }

    /// Why a relative path found under an input folder cannot name outputs, or nil.
    public static func problem(relativePath path: String) -> String? {
        if path.hasPrefix("/") { return "is absolute" }
        if path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0.isEmpty }) {
            return "has an empty or '..' component"
        }
        if let bad = controlCharacter(in: path) { return "contains the control character U+\(bad)" }
        return nil
    }

    private static func controlCharacter(in s: String) -> String? {
        // C0/C1 controls, and the bidirectional overrides that make a name display as another.
        s.unicodeScalars.first {
            $0.properties.generalCategory == .control || (0x202A...0x202E).contains($0.value)
                || (0x2066...0x2069).contains($0.value)
        }
        .map { String(format: "%04X", $0.value) }
    }
}
