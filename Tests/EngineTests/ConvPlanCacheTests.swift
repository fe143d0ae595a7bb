import Foundation
import TesseraEngine
import XCTest

/// The per-shape route choice: measured once, remembered in memory and on disk, per machine, and never trusted
/// blindly when read back.
final class ConvPlanCacheTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("plan-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testMeasuresOnceKeepsTheFastestAndEndsWithIt() {
        let cache = ConvPlanCache(file: folder.appendingPathComponent("plans.json"), machine: "test machine")
        var runs: [ConvRoute] = []
        let candidates: [ConvRoute] = [.rowBandDot, .rowBandPacked, .im2col]
        cache.run("shape", candidates: candidates) { route in
            runs.append(route)
            if route != .rowBandPacked { usleep(3_000) }
        }
        XCTAssertEqual(Set(runs), Set(candidates), "every candidate timed")
        XCTAssertEqual(runs.last, .rowBandPacked, "the output of the measuring call comes from the chosen route")
        XCTAssertEqual(cache.route(for: "shape"), .rowBandPacked)
        runs = []
        cache.run("shape", candidates: candidates) { runs.append($0) }
        XCTAssertEqual(runs, [.rowBandPacked], "a known shape runs its route once, unmeasured")
    }

    func testChoicesPersistPerMachineAndSurviveOtherWriters() throws {
        let file = folder.appendingPathComponent("sub/plans.json")
        let first = ConvPlanCache(file: file, machine: "cpu A | avx2 | 2 threads")
        first.run("k1", candidates: [.rowBand, .im2col]) { route in if route == .rowBand { usleep(3_000) } }
        let other = ConvPlanCache(file: file, machine: "cpu B | avx512 | 2 threads")
        other.run("k1", candidates: [.rowBand, .im2col]) { route in if route == .im2col { usleep(3_000) } }
        // A new process on machine A reads A's choice; B's entry is kept beside it.
        var runs: [ConvRoute] = []
        ConvPlanCache(file: file, machine: "cpu A | avx2 | 2 threads").run("k1", candidates: [.rowBand, .im2col]) {
            runs.append($0)
        }
        XCTAssertEqual(runs, [.im2col])
        XCTAssertEqual(ConvPlanCache(file: file, machine: "cpu B | avx512 | 2 threads").route(for: "k1"), .rowBand)
        XCTAssertNil(ConvPlanCache(file: file, machine: "cpu C | avx2 | 2 threads").route(for: "k1"))
    }

    func testChoicesOfOlderKernelRevisionsAreDropped() throws {
        let file = folder.appendingPathComponent("plans.json")
        let stale = "cpu A | avx2 | 2 threads | kernels r\(ConvPlanCache.kernelRevision - 1)"
        let current = "cpu A | avx2 | 2 threads | kernels r\(ConvPlanCache.kernelRevision)"
        ConvPlanCache(file: file, machine: "cpu B").run("k", candidates: [.rowBand, .im2col]) { _ in }
        ConvPlanCache(file: file, machine: stale).run("k", candidates: [.rowBand, .im2col]) { _ in }
        XCTAssertNotNil(ConvPlanCache(file: file, machine: stale).route(for: "k"), "its own write keeps it")
        ConvPlanCache(file: file, machine: current).run("k", candidates: [.rowBand, .im2col]) { _ in }
        XCTAssertNil(ConvPlanCache(file: file, machine: stale).route(for: "k"), "the older revision's choices go")
        XCTAssertNotNil(ConvPlanCache(file: file, machine: "cpu B").route(for: "k"), "other machines' stay")
        XCTAssertNotNil(ConvPlanCache(file: file, machine: current).route(for: "k"))
    }

    func testDamagedForeignOrHugeFilesAreIgnored() throws {
        let file = folder.appendingPathComponent("plans.json")
        for content in [
            Data("not json".utf8), Data(#"{"version": 99, "machines": {"m": {"k": "im2col"}}}"#.utf8),
            Data(#"{"version": 1, "machines": {"m": {"k": "no-such-route"}}}"#.utf8),
            Data(count: ConvPlanCache.maximumFileBytes + 1)
        ] {
            try content.write(to: file)
            let cache = ConvPlanCache(file: file, machine: "m")
            XCTAssertNil(cache.route(for: "k"))
            cache.run("k", candidates: [.rowBand, .im2col]) { route in if route == .rowBand { usleep(3_000) } }
            XCTAssertEqual(ConvPlanCache(file: file, machine: "m").route(for: "k"), .im2col, "rewritten whole")
        }
    }

    func testForcedRoutesWinWhereTheyApply() {
        let cache = ConvPlanCache(file: nil, machine: "m", forcedRoute: .im2col)
        var runs: [ConvRoute] = []
        cache.run("k", candidates: [.rowBand, .im2col]) { runs.append($0) }
        ConvRoute.forcing(.rowBand) { cache.run("k", candidates: [.rowBand, .im2col]) { runs.append($0) } }
        // Forced but inapplicable: the one candidate runs.
        ConvRoute.forcing(.rowBandDot) { cache.run("strided", candidates: [.im2col]) { runs.append($0) } }
        XCTAssertEqual(runs, [.im2col, .rowBand, .im2col])
        XCTAssertNil(cache.route(for: "k"), "forced runs are not remembered")
    }

    func testEnvironmentConfiguration() {
        XCTAssertNil(ConvPlanCache(environment: ["TESSERA_PLAN_CACHE": "off", "HOME": "/h"]).file)
        XCTAssertEqual(ConvPlanCache(environment: ["TESSERA_PLAN_CACHE": "/x/p.json"]).file?.path, "/x/p.json")
        XCTAssertEqual(
            ConvPlanCache(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).file?.path,
            "/c/tessera/conv-plans.json")
        XCTAssertEqual(ConvPlanCache(environment: ["HOME": "/h"]).file?.path, "/h/.cache/tessera/conv-plans.json")
        XCTAssertEqual(
            ConvPlanCache(environment: ["TESSERA_CONV_ROUTE": "row-band-dot"]).forcedByEnvironment, .rowBandDot)
        XCTAssertNil(ConvPlanCache(environment: ["TESSERA_CONV_ROUTE": "fastest"]).forcedByEnvironment)
    }
}
