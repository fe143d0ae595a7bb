import ArgumentParser
import Foundation
import TesseraCLI
import TesseraCheckpoint
import TesseraData
import TestSupport
import XCTest

/// The `tessera` commands run in this process, as the executable runs them (no prebuilt binary): parsing, usage
/// errors, and a PyTorch model imported and used to segment.
final class CommandTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// Parses and runs `arguments` as `tessera` would.
    func run(_ arguments: [String]) throws {
        var command = try Tessera.parseAsRoot(arguments)
        try command.run()
    }

    /// The usage error `arguments` give: exit status and message.
    func usageError(_ arguments: [String]) -> (code: Int32, message: String)? {
        do {
            _ = try Tessera.parseAsRoot(arguments)
            return nil
        } catch {
            return (Tessera.exitCode(for: error).rawValue, Tessera.message(for: error))
        }
    }

    func testVersionComesFromTheOneConstant() {
        XCTAssertEqual(usageError(["--version"])?.message, TesseraVersion.current)
        XCTAssertEqual(usageError(["--version"])?.code, 0)
    }

    func testAValueOutsideAClosedSetIsAUsageErrorListingTheCases() {
        let train = ["train", "--images", "i", "--masks", "m", "--out", "o"]
        for (option, typo, listed) in [
            ("--optimizer", "adma", "adamw"), ("--best-metric", "mean_dic", "mean_dice"),
            ("--mask-kind", "binry", "palette"),
            ("--model", "resnet35-unet", "resnet34-unet"), ("--loss", "dice-ce", "dice_ce")
        ] {
            let failure = usageError(train + [option, typo])
            XCTAssertEqual(failure?.code, ExitCode.validationFailure.rawValue, option)
            XCTAssertTrue(failure?.message.contains(listed) ?? false, "\(option): \(failure?.message ?? "accepted")")
        }
        XCTAssertNil(usageError(train + ["--optimizer", "sgd", "--best-metric", "mean_iou"]))
    }

    func testInstanceOptionsAreCheckedBeforeAnythingRuns() {
        let segment = ["segment", "in", "--model", "m", "--out", "o"]
        for (extra, listed) in [
            (["--instances", "watershd"], "watershed"), (["--instances", "components", "--connectivity", "6"], "8"),
            (["--instances", "watershed", "--seeds", "peaks"], "probability"),
            (["--instances", "components", "--min-size", "-1"], "min-size"),
            (["--instances", "watershed", "--seed-depth", "0"], "seed-depth")
        ] {
            let failure = usageError(segment + extra)
            XCTAssertEqual(failure?.code, ExitCode.validationFailure.rawValue, "\(extra)")
            XCTAssertTrue(failure?.message.contains(listed) ?? false, "\(extra): \(failure?.message ?? "accepted")")
        }
        XCTAssertNil(usageError(segment + ["--instances", "watershed", "--connectivity", "4", "--exclude-border"]))
        XCTAssertNil(
            usageError(["eval", "--model", "m", "--images", "i", "--masks", "k", "--instances", "components"]))
    }

    /// Lists and pairs are parsed by argument-parser before anything runs: a bad element is a usage error that
    /// names it.
    func testListOptionsAreUsageErrorsNamingTheBadElement() {
        let cases: [([String], String)] = [
            (["segment", "a", "--model", "m", "--out", "o", "--outputs", "mask,colr"], "colr"),
            (["segment", "a", "--model", "m", "--out", "o", "--shard", "5/2"], "--shard"),
            (["explain", "a", "--model", "m", "--out", "o", "--outputs", "heatmap,rwa"], "rwa"),
            (["explain", "a", "--model", "m", "--out", "o", "--box", "1,2,3"], "--box"),
            (["explain", "a", "--model", "m", "--out", "o", "--mean", "0.5,nan"], "--mean"),
            (["train", "--images", "i", "--masks", "m", "--out", "o", "--class-weights", "1,x"], "--class-weights")
        ]
        for (arguments, named) in cases {
            let failure = usageError(arguments)
            XCTAssertEqual(failure?.code, ExitCode.validationFailure.rawValue, "\(arguments)")
            XCTAssertTrue(failure?.message.contains(named) ?? false, "\(arguments): \(failure?.message ?? "accepted")")
        }
        XCTAssertNil(
            usageError(["segment", "a", "--model", "m", "--out", "o", "--outputs", "mask,prob", "--shard", "1/4"]))
    }

    func testImportedSmpModelSegmentsInProcess() throws {
        let torch = try SharedFixtures.require(SharedFixtures.torchFolder)
        let weights = torch.appendingPathComponent("smp_unet_resnet18.smp.safetensors")
        let model = folder.appendingPathComponent("smp.safetensors")
        try run([
            "import", weights.path, "--arch", "resnet18-unet", "--in-channels", "1", "--classes", "2",
            "--class-names", "membrane,cell", "--crop", "64", "--out", model.path
        ])
        XCTAssertEqual(try Checkpoint.read(model).info.classNames, ["membrane", "cell"])
        let image = Image(width: 70, height: 45, channels: 1, samples: .uint8((0..<3150).map { UInt8($0 % 251) }))
        let input = folder.appendingPathComponent("in.png")
        try ImageCodec.write(image, to: input)
        let out = folder.appendingPathComponent("seg")
        try run(["segment", input.path, "--model", model.path, "--out", out.path, "--quiet"])
        let mask = try ImageCodec.decode(out.appendingPathComponent("in.png"))
        XCTAssertEqual([mask.width, mask.height], [70, 45])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.json").path))
        // Weights for another architecture: refused, nothing written.
        let wrong = folder.appendingPathComponent("wrong.safetensors")
        XCTAssertThrowsError(
            try run([
                "import", weights.path, "--arch", "resnet34-unet", "--in-channels", "1", "--classes", "2", "--out",
                wrong.path
            ]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: wrong.path))
    }
}
