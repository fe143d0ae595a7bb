import Foundation
import TesseraEngine
import XCTest

/// Locates `../shared` material for tests: skips visibly when absent, fails when REQUIRE_SHARED=1.
public enum SharedFixtures {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` beside the package.
    public static var sharedRoot: URL {
        packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// The PyTorch fixture folder: `TESSERA_TORCH_FIXTURES`, else `../shared/fixtures/torch`.
    public static var torchFolder: URL {
        if let p = ProcessInfo.processInfo.environment["TESSERA_TORCH_FIXTURES"], !p.isEmpty {
            return URL(fileURLWithPath: p, relativeTo: packageRoot).standardizedFileURL
        }
        return sharedRoot.appendingPathComponent("fixtures/torch")
    }

    /// Returns `url` if it exists; otherwise throws XCTSkip, or fails the test under REQUIRE_SHARED=1.
    public static func require(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let message = "shared material missing at \(url.path)"
        if ProcessInfo.processInfo.environment["REQUIRE_SHARED"] == "1" {
            XCTFail("\(message) (REQUIRE_SHARED=1)", file: file, line: line)
            throw XCTSkip(message)
        }
        print("SKIP: \(message)")
        throw XCTSkip(message)
    }

    /// Every `*.safetensors` in the torch fixture folder whose metadata has an `op` and `cases`.
    public static func operatorFiles() throws -> [SafeTensorsFile] {
        let folder = try require(torchFolder)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        return try names.map { try SafeTensorsFile(contentsOf: folder.appendingPathComponent($0)) }
            .filter { $0.metadata["op"] != nil && $0.metadata["cases"] != nil }
    }
}

/// One fixture case: its name, parameters and tensors by role.
public struct FixtureCase {
    public let file: SafeTensorsFile
    public let name: String
    public let params: [String: Any]

    /// All cases listed in a file's `__metadata__.cases`.
    public static func all(in file: SafeTensorsFile) throws -> [FixtureCase] {
        guard let text = file.metadata["cases"], let data = text.data(using: .utf8),
            let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else {
            throw FileError(file: file.file, reason: "metadata 'cases' is not a JSON list")
        }
        return list.compactMap { c in
            guard let name = c["name"] as? String else { return nil }
            return FixtureCase(file: file, name: name, params: c["params"] as? [String: Any] ?? [:])
        }
    }

    /// The tensor `CASE.role`, if present.
    public func tensor(_ role: String) -> Tensor? {
        let key = "\(name).\(role)"
        guard file.entry(key) != nil else { return nil }
        return try? file.tensor(key)
    }

    public func int(_ key: String, default d: Int) -> Int { (params[key] as? NSNumber)?.intValue ?? d }
    public func double(_ key: String, default d: Double) -> Double { (params[key] as? NSNumber)?.doubleValue ?? d }
    public func bool(_ key: String, default d: Bool) -> Bool { (params[key] as? NSNumber)?.boolValue ?? d }
    public func string(_ key: String) -> String? { params[key] as? String }

    /// An int or list-of-int parameter as a list.
    public func ints(_ key: String) -> [Int]? {
        if let v = params[key] as? NSNumber { return [v.intValue] }
        if let v = params[key] as? [NSNumber] { return v.map(\.intValue) }
        return nil
    }

    public func doubles(_ key: String) -> [Double]? { (params[key] as? [NSNumber])?.map(\.doubleValue) }
}

/// Elementwise closeness |a - b| <= atol + rtol * |b|; returns a message naming the worst element, or nil.
public func closeness(_ actual: Tensor, _ expected: Tensor, atol: Float = 1e-4, rtol: Float = 1e-3) -> String? {
    guard actual.shape == expected.shape else { return "shape \(actual.shape) != expected \(expected.shape)" }
    let a = actual.scalars, b = expected.scalars
    var worst = -1, worstExcess: Float = 0
    for i in 0..<a.count {
        let excess = Swift.abs(a[i] - b[i]) - (atol + rtol * Swift.abs(b[i]))
        if !(excess <= 0) && (worst < 0 || !(excess <= worstExcess)) { worst = i; worstExcess = excess }
    }
    if worst < 0 { return nil }
    return "element \(worst): got \(a[worst]), expected \(b[worst]) (|diff| \(Swift.abs(a[worst] - b[worst])))"
}

/// Asserts closeness with a labelled message.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, atol: Float = 1e-4, rtol: Float = 1e-3,
    _ label: String, file: StaticString = #filePath, line: UInt = #line
) {
    if let msg = closeness(actual, expected, atol: atol, rtol: rtol) {
        XCTFail("\(label): \(msg)", file: file, line: line)
    }
}
