import Foundation
import TesseraData
import TesseraEngine

/// A deterministic slice of a sorted input list: shard `index` of `count` takes items index, index + count, ...
public struct Shard: Equatable, Sendable {
    public let index: Int, count: Int

    /// Parses `i/n` (0 <= i < n).
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, (0..<n).contains(i) else {
            return nil
        }
        index = i
        count = n
    }

    public func select<T>(_ items: [T]) -> [T] { stride(from: index, to: items.count, by: count).map { items[$0] } }
}
