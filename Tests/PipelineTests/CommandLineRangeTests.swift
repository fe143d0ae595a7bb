import Foundation
import TesseraData
import XCTest

/// Command-line values out of range are usage errors naming the option (exit status 64), never a trap.
final class CommandLineRangeTests: XCTestCase {
    func testOutOfRangeValuesAreUsageErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let image = Image(width: 20, height: 12, channels: 1, samples: .uint8((0..<240).map { UInt8($0) }))
        try ImageCodec.write(image, to: dir.appendingPathComponent("images/a.png"))
        try ImageCodec.write(
            Image(width: 20, height: 12, channels: 1, samples: .uint8((0..<240).map { UInt8($0 % 2) })),
            to: dir.appendingPathComponent("masks/a.png"))
        let model = dir.appendingPathComponent("m.safetensors")
        try TesseraProcess.checkpoint(channels: 1, at: model)
        let train = [
            "train", "--images", dir.appendingPathComponent("images").path, "--masks",
            dir.appendingPathComponent("masks").path, "--out", dir.appendingPathComponent("run").path
        ]
        let explain = [
            "explain", dir.appendingPathComponent("images").path, "--model", model.path,
            "--out", dir.appendingPathComponent("ex").path
        ]
        let cases: [(arguments: [String], option: String)] = [
            (train + ["--batch", "0"], "--batch"),
            (train + ["--crop", "-5"], "--crop"),
            (train + ["--lr", "nan"], "--lr"),
            (train + ["--val-split", "1.5"], "--val-split"),
            (train + ["--steps", "0"], "--steps"),
            (train + ["--channels", "0"], "--channels"),
            (train + ["--stop-after", "0"], "--stop-after"),
            // One value per channel at the deepest level (batch 1, crop 16, depth 4): batch norm cannot train on it.
            (train + ["--batch", "1", "--crop", "16", "--depth", "4", "--val-split", "0"], "--batch or --crop"),
            (explain + ["--band", "9223372036854775807"], "--band"),
            (explain + ["--box", "0,0,9223372036854775807,5"], "--box"),
            (explain + ["--box", "-3,0,5,5"], "--box"),
            (
                [
                    "segment", dir.appendingPathComponent("images").path, "--model", model.path, "--out",
                    dir.appendingPathComponent("seg").path, "--tile", "0"
                ], "--tile"
            ),
            // Each value in range, but the layer's tensors would overflow Int (65536^4 floats) or need 64 GiB.
            (["bench", "--layer", "65536,65536,65536,65536"], "--layer"),
            (["bench", "--layer", "16,16,x,512"], "--layer")
        ]
        for c in cases {
            let r = try TesseraProcess.run(c.arguments)
            XCTAssertTrue(r.exited, "\(c.arguments.suffix(2)): crashed")
            XCTAssertEqual(
                r.status, c.option == "--batch or --crop" ? 1 : 64, "\(c.arguments.suffix(2)): \(r.stderr.prefix(300))")
            XCTAssertTrue(r.stderr.contains(c.option), "\(c.arguments.suffix(2)): \(r.stderr.prefix(300))")
        }
        // A box inside the limits but outside an image fails that image, naming it, and the run goes on.
        let r = try TesseraProcess.run(explain + ["--box", "10,5,100,4"])
        XCTAssertTrue(r.exited)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("a.png") && r.stderr.contains("outside the 20x12 image"), r.stderr)
    }
}

/// An engine setting in the environment that would be ignored or misread is a usage error naming the variable.
final class EnvironmentSettingTests: XCTestCase {
    func testBadEngineSettingsAreRefused() throws {
        let cases: [(String, String)] = [
            ("TESSERA_ISA", "avx-2"), ("TESSERA_THREADS", "0"), ("TESSERA_THREADS", "lots"),
            ("TESSERA_CONV_ROUTE", "winograd-ish"), ("TESSERA_POOL_MB", "-1"), ("TESSERA_PLAN_CACHE", ""),
            ("TESSERA_GUARD_SCRATCH", "yes")
        ]
        for (name, value) in cases {
            let r = try TesseraProcess.run(["bench", "--peak"], environment: [name: value])
            XCTAssertTrue(r.exited, "\(name)=\(value) crashed")
            XCTAssertEqual(r.status, 64, "\(name)=\(value): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("\(name)=\(value):"), "\(name)=\(value): \(r.stderr)")
        }
        // Valid settings pass, and --help lists every variable.
        let ok = try TesseraProcess.run(
            ["--help"], environment: ["TESSERA_ISA": "scalar", "TESSERA_CONV_ROUTE": "im2col"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        for name in ["TESSERA_ISA", "TESSERA_THREADS", "TESSERA_PLAN_CACHE", "TESSERA_CONV_ROUTE", "TESSERA_POOL_MB"] {
            XCTAssertTrue(ok.stdout.contains(name), "--help does not list \(name)")
        }
    }
}
