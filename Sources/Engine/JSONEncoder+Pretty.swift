import Foundation

extension JSONEncoder {
    /// Indented, keys sorted: the files Tessera writes for people and diffs (reports, plans, configurations).
    public static var pretty: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
