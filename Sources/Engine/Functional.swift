import Foundation

/// Stateless operators with PyTorch semantics (torch.nn.functional); modules hold state and call these.
public enum Functional {}

extension Functional {
    /// Expands an Int-or-list argument to `count` values.
    static func expand(_ v: [Int], _ count: Int, _ name: String) -> [Int] {
        if v.count == count { return v }
        precondition(v.count == 1, "\(name) needs 1 or \(count) values, got \(v)")
        return Array(repeating: v[0], count: count)
    }

}
