import Foundation
import TesseraData
import TesseraEngine
import TestSupport
import XCTest

/// `mpirun -np 2 tessera train`: two ranks over TCP on this machine, against one process on the same global batch.
final class DataParallelTrainingTests: XCTestCase {
    static let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")

    func mpirun(_ ranks: Int, _ arguments: [String], environment: [String: String] = [:]) throws
        -> TesseraProcess.Result
    {
        guard FileManager.default.isExecutableFile(atPath: Self.mpirun.path) else {
            throw XCTSkip("mpirun is missing: make deps installs openmpi-bin")
        }
        let exported = environment.keys.sorted().flatMap { ["-x", $0] }
        return try TesseraProcess.run(
            ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "tcp,self", "-np", "\(ranks)"] + exported
                + ["-x", "TESSERA_THREADS=1", TesseraProcess.binary.path] + arguments,
            environment: environment, executable: Self.mpirun)
    }

    func tensors(_ url: URL) throws -> [String: [Float]] {
        let file = try SafeTensorsFile(contentsOf: url)
        return try Dictionary(uniqueKeysWithValues: file.names.map { ($0, try file.tensor($0).scalars) })
    }

    var samples: URL { SharedFixtures.packageRoot.appendingPathComponent("samples/train") }

    func arguments(out: URL, extra: [String] = []) -> [String] {
        [
            "train", "--images", samples.appendingPathComponent("images").path, "--masks",
            samples.appendingPathComponent("masks").path, "--width", "4", "--depth", "2", "--crop", "64", "--batch",
            "4", "--steps", "10", "--val-every", "5", "--seed", "3", "--out", out.path
        ] + extra
    }

    /// Without batch norm, 2 ranks taking 2 samples each of every 4-sample batch end where one process taking
    /// all 4 ends: weights and optimizer state within 1e-4 relative per tensor after 10 steps; validation (split
    /// over the ranks) reports the same metrics; only rank 0 wrote the run folder.
    func testTwoRanksGiveTheWeightsOfOneProcess() throws {
        let folder = try TemporaryFolder()
        let one = try TesseraProcess.run(
            arguments(out: folder.file("one"), extra: ["--no-batch-norm", "--quiet"]),
            environment: ["TESSERA_THREADS": "1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try mpirun(2, arguments(out: folder.file("two"), extra: ["--no-batch-norm"]))
        XCTAssertEqual(two.status, 0, two.stderr)
        let a = try tensors(folder.file("one/last.safetensors")), b = try tensors(folder.file("two/last.safetensors"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        XCTAssertGreaterThan(a.count, 10)
        for (name, x) in a {
            let y = try XCTUnwrap(b[name])
            let scale = max(x.map { abs($0) }.max() ?? 0, 1e-12)
            let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst / scale, 1e-4, name)
        }
        let rows = { (run: String) in
            try String(contentsOf: folder.file("\(run)/metrics.csv"), encoding: .utf8).split(separator: "\n")
        }
        let header = try rows("one")[0].split(separator: ",")
        let accuracy = try XCTUnwrap(header.firstIndex(of: "pixel_accuracy"))
        let loss = try XCTUnwrap(header.firstIndex(of: "train_loss"))
        for (x, y) in zip(try rows("one").dropFirst(), try rows("two").dropFirst()) {
            let p = x.split(separator: ","), q = y.split(separator: ",")
            XCTAssertEqual(Double(p[accuracy]) ?? -1, Double(q[accuracy]) ?? 1, accuracy: 1e-9)
            XCTAssertEqual(Double(p[loss]) ?? -1, Double(q[loss]) ?? 1, accuracy: 1e-4)
        }
        XCTAssertEqual(try rows("two").count, 3, "one header and 2 validations, written once")
        XCTAssertEqual(two.stdout.components(separatedBy: "trained 10 steps").count - 1, 1, "rank 0 reports alone")
    }

    /// A launched run whose MPI library cannot load stops with the reason; a run without a launcher never loads
    /// MPI (the binary does not link it), so it trains whatever the MPI library variable says.
    func testMPIIsLoadedOnlyUnderALauncher() throws {
        let folder = try TemporaryFolder()
        let missing = try mpirun(
            1, arguments(out: folder.file("missing")), environment: ["TESSERA_MPI_LIBRARY": "libmpi-absent.so.1"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("MPI cannot start"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("libmpi-absent.so.1"), missing.stderr)
        let alone = try TesseraProcess.run(
            arguments(out: folder.file("alone"), extra: ["--quiet"]),
            environment: ["TESSERA_MPI_LIBRARY": "libmpi-absent.so.1", "TESSERA_THREADS": "1"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        let needed = try TesseraProcess.run(
            [TesseraProcess.binary.path], executable: URL(fileURLWithPath: "/usr/bin/ldd"))
        XCTAssertFalse(needed.stdout.contains("libmpi"), needed.stdout)
        XCTAssertTrue(needed.stdout.contains("libc.so"), "ldd listed the binary's libraries")
        // Under a launcher with one rank: the weights of a run without one.
        let single = try mpirun(1, arguments(out: folder.file("single"), extra: ["--quiet"]))
        XCTAssertEqual(single.status, 0, single.stderr)
        let a = try tensors(folder.file("alone/last.safetensors")),
            b = try tensors(folder.file("single/last.safetensors"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
        XCTAssertEqual(differing, [], "tensors that differ (bit for bit)")
    }
}
