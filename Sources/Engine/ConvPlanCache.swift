import CKernels
import Foundation

/// Chooses, per convolution shape and pass, the fastest route on the machine that runs, by timing the candidates
/// the first time the shape runs, and remembers the choice in memory and in a small JSON file, so that later
/// processes on the same machine skip the measurement.
///
/// The file is `$TESSERA_PLAN_CACHE`, or `$XDG_CACHE_HOME/tessera/conv-plans.json` (`~/.cache/...` without it);
/// `TESSERA_PLAN_CACHE=off` keeps choices in memory only. Entries are keyed by CPU model, instruction set, thread
/// count and kernel revision, then by shape; a damaged or foreign file is ignored and rewritten.
/// `TESSERA_CONV_ROUTE` forces one route wherever it applies (as `ConvRoute.forcing` does for one task).
///
/// Every output comes from the chosen route, also on the call that measured (the chosen route runs last), so a
/// run's numbers do not depend on whether the choice was measured or read back. The measurement costs each
/// candidate's run twice (four times for passes under 2 ms), the first time a shape runs on a machine. Choices of
/// older kernel revisions are dropped when the file is rewritten.
// @unchecked: the remembered routes and the loaded flag are read and written only under `lock`; the rest is
// constant.
public final class ConvPlanCache: @unchecked Sendable {
    /// The process's cache, configured from the environment on first use. It holds only memoised measurements:
    /// results never depend on it beyond float rounding.
    public static let shared = ConvPlanCache(environment: ProcessInfo.processInfo.environment)

    /// Where choices persist; nil when the disk cache is off.
    public let file: URL?
    /// CPU model, instruction set and threads: choices measured elsewhere do not apply here.
    public let machine: String
    /// A route forced by `TESSERA_CONV_ROUTE`.
    public let forcedByEnvironment: ConvRoute?
    /// An algorithm family forced by `TESSERA_CONV_ALGO`.
    public let algorithm: ConvAlgorithm?
    private var routes: [String: ConvRoute] = [:]
    private var loaded = false
    private let lock = NSLock()

    /// Largest plan file read (it holds a few hundred short entries).
    public static let maximumFileBytes = 1 << 20

    public init(
        file: URL?, machine: String = ConvPlanCache.machineKey, forcedRoute: ConvRoute? = nil,
        algorithm: ConvAlgorithm? = nil
    ) {
        self.file = file
        self.machine = machine
        forcedByEnvironment = forcedRoute
        self.algorithm = algorithm
    }

    public convenience init(environment env: [String: String]) {
        let file: URL?
        switch env[EngineEnvironment.planCache.rawValue] {
        case "off", "0", "false": file = nil
        case let path? where !path.isEmpty: file = URL(fileURLWithPath: path)
        default:
            let base =
                env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
                ?? env["HOME"].map { URL(fileURLWithPath: $0).appendingPathComponent(".cache") }
            file = base?.appendingPathComponent("tessera/conv-plans.json")
        }
        self.init(
            file: file, forcedRoute: env[EngineEnvironment.convRoute.rawValue].flatMap(ConvRoute.init(rawValue:)),
            algorithm: env[EngineEnvironment.convAlgorithm.rawValue].flatMap(ConvAlgorithm.init(rawValue:)))
    }

    /// Changes whenever a route's kernels change enough to change which route wins: choices measured with
    /// other kernels are not reused.
    public static let kernelRevision = 12

    public static var machineKey: String {
        "\(cpuModel) | \(GEMM.kernelName) | \(Parallel.threadCount) threads" + revisionSuffix
    }

    static let revisionSuffix = " | kernels r\(kernelRevision)"

    /// A machine key written with another kernel revision than this build's.
    static func isStale(machine key: String) -> Bool {
        key.contains(" | kernels r") && !key.hasSuffix(revisionSuffix)
    }

    /// The processor's model name (Linux `/proc/cpuinfo`), or the architecture where it cannot be read.
    public static let cpuModel: String = {
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("model name") || line.hasPrefix("Model") {
                if let colon = line.firstIndex(of: ":") {
                    let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    if !name.isEmpty { return name }
                }
            }
        }
        #if arch(x86_64)
            return "x86_64"
        #elseif arch(arm64)
            return "arm64"
        #else
            return "unknown"
        #endif
    }()

    /// Runs the pass `key` through one of `candidates` (in order of preference when nothing is known): the
    /// forced route, the remembered one, or each in turn, timed, remembering the fastest.
    public func run(_ key: String, candidates: [ConvRoute], _ body: (ConvRoute) -> Void) {
        choose(key, candidates: candidates) { route in
            ConvRoute.log?.record(route)
            body(route)
        }
    }

    private func choose(_ key: String, candidates: [ConvRoute], _ body: (ConvRoute) -> Void) {
        var candidates = candidates
        switch algorithm {
        case .direct?: candidates.removeAll { $0 == .winograd }
        case .winograd? where candidates.contains(.winograd): candidates = [.winograd]
        default: break
        }
        guard let first = candidates.first else { return }
        if let forced = ConvRoute.forced ?? forcedByEnvironment, candidates.contains(forced) { return body(forced) }
        if candidates.count == 1 { return body(first) }
        if let known = route(for: key), candidates.contains(known) { return body(known) }
        var best = [ConvRoute: UInt64]()
        var last = first
        func time(_ r: ConvRoute) {
            let start = DispatchTime.now().uptimeNanoseconds
            body(r)
            let t = DispatchTime.now().uptimeNanoseconds - start
            best[r] = min(best[r] ?? .max, t)
            last = r
        }
        // Every candidate times at least twice, the best kept: a first run pays cold caches and page faults for its
        // scratch (Winograd's weight-gradient accumulators: 2 x 38 MB on a 512 -> 512 layer, which once lost to a
        // route 2x slower when warm), and a shared host's speed drifts. Short passes are noisier: four rounds.
        for _ in 0..<2 { for r in candidates { time(r) } }
        if (best.values.min() ?? 0) < 2_000_000 {
            for _ in 0..<2 { for r in candidates { time(r) } }
        }
        let pick = candidates.min { best[$0]! < best[$1]! }!
        // The output must be the chosen route's.
        if pick != last { body(pick) }
        remember(pick, for: key)
    }

    /// The remembered route for `key`, loading the file on first use.
    public func route(for key: String) -> ConvRoute? {
        lock.lock()
        defer { lock.unlock() }
        if !loaded {
            loaded = true
            if let file { routes.merge(Self.read(file)[machine] ?? [:]) { mine, _ in mine } }
        }
        return routes[key]
    }

    private func remember(_ route: ConvRoute, for key: String) {
        lock.lock()
        routes[key] = route
        let mine = routes
        lock.unlock()
        guard let file else { return }
        // Merge with what other processes wrote since; a failed write only costs a later measurement.
        var all = Self.read(file)
        all[machine, default: [:]].merge(mine) { _, new in new }
        // Choices measured with older kernels are never read again: drop them so the file does not grow with
        // every revision (another machine's current choices stay).
        all = all.filter { $0.key == machine || !Self.isStale(machine: $0.key) }
        guard let data = try? JSONEncoder.pretty.encode(PlanFile(version: PlanFile.currentVersion, machines: all))
        else { return }
        try? FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? AtomicFile.write(data, to: file)
    }

    /// Choices by machine in `file`; empty when it is missing, too large, damaged or of another version.
    static func read(_ file: URL) -> [String: [String: ConvRoute]] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
            let size = attributes[.size] as? Int, size <= maximumFileBytes,
            let data = try? Data(contentsOf: file),
            let plan = try? JSONDecoder().decode(PlanFile.self, from: data),
            plan.version == PlanFile.currentVersion
        else { return [:] }
        return plan.machines
    }

    struct PlanFile: Codable {
        static let currentVersion = 1
        var version: Int
        var machines: [String: [String: ConvRoute]]
    }
}
