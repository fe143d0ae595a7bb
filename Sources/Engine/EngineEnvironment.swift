import CKernels
import Foundation

/// The environment variables the engine reads, declared once: `tessera --help` lists them from here and the CLI
/// refuses a value that would otherwise be ignored or misread (`TESSERA_ISA=avx-2` used to fall back silently to
/// the CPU's best instruction set, so a forced-AVX2 measurement measured AVX-512).
public enum EngineEnvironment: String, CaseIterable, Sendable {
    case isa = "TESSERA_ISA"
    case threads = "TESSERA_THREADS"
    case planCache = "TESSERA_PLAN_CACHE"
    case convRoute = "TESSERA_CONV_ROUTE"
    case convAlgorithm = "TESSERA_CONV_ALGO"
    case poolMegabytes = "TESSERA_POOL_MB"
    case guardScratch = "TESSERA_GUARD_SCRATCH"

    /// The instruction sets `TESSERA_ISA` can name, best first.
    public static let instructionSets = ["avx512", "avx2", "scalar"]

    /// What the variable does, for help text.
    public var summary: String {
        switch self {
        case .isa: "kernel instruction set: \(Self.instructionSets.joined(separator: " | ")) (default: the CPU's best)"
        case .threads: "worker threads, 1 or more (default: the active cores)"
        case .planCache: "convolution plan file path, or off (default: ~/.cache/tessera/conv-plans.json)"
        case .convRoute: "force a convolution route: \(ConvRoute.allCases.map(\.rawValue).joined(separator: " | "))"
        case .convAlgorithm:
            "convolution algorithm: \(ConvAlgorithm.allCases.map(\.rawValue).joined(separator: " | ")) (default: measured per layer)"
        case .poolMegabytes: "tensor pool limit in MB (default: 1/4 of memory, at most 4096)"
        case .guardScratch: "1: kernel scratch ends at a guard page (slow; for tests)"
        }
    }

    /// Why `value` is not a valid setting of this variable, or nil if it is.
    public func problem(with value: String) -> String? {
        switch self {
        case .isa:
            guard Self.instructionSets.contains(value) else {
                return "unknown instruction set; one of \(Self.instructionSets.joined(separator: ", "))"
            }
            return tk_kernel_named(value) == nil ? "this CPU does not support \(value)" : nil
        case .threads:
            return Int(value).map { (1...4096).contains($0) } == true ? nil : "not a whole number 1...4096"
        case .planCache:
            return value.isEmpty ? "empty; a file path, or off" : nil
        case .convRoute:
            return ConvRoute(rawValue: value) == nil
                ? "unknown route; one of \(ConvRoute.allCases.map(\.rawValue).joined(separator: ", "))" : nil
        case .convAlgorithm:
            return ConvAlgorithm(rawValue: value) == nil
                ? "unknown algorithm; one of \(ConvAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))" : nil
        case .poolMegabytes:
            return Int(value).map { (0...(1 << 24)).contains($0) } == true ? nil : "not a whole number 0...16777216"
        case .guardScratch:
            return ["0", "1"].contains(value) ? nil : "0 or 1"
        }
    }

    /// Every set variable's problem, as "NAME=value: reason" lines.
    public static func problems(in environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        allCases.compactMap { variable in
            guard let value = environment[variable.rawValue], let reason = variable.problem(with: value) else {
                return nil
            }
            return "\(variable.rawValue)=\(value): \(reason)"
        }
    }

    /// The variables and what they do, one per line (for `--help`).
    public static var helpText: String {
        allCases.map { "  \($0.rawValue)\n      \($0.summary)" }.joined(separator: "\n")
    }
}
