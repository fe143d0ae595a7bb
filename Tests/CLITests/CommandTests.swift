import ArgumentParser
import Foundation
import TesseraCLI
import TesseraCheckpoint
import TesseraData
import TesseraEngine
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

    /// Every segmentation_models_pytorch case in the fixture folder (`*.smp.json`), imported and segmented by the
    /// commands as a user runs them: the logits `segment` writes equal PyTorch's reference logits (1e-4 of their
    /// scale) on the reference input (written as a float TIFF, normalisation 0 / 1, one window over the image).
    func testEveryImportedSmpModelSegmentsToPyTorchsLogits() throws {
        let (cases, torch) = try SmpCase.all()
        for smp in cases {
            let name = smp.name
            let model = folder.appendingPathComponent("\(name).safetensors")
            let c = smp.in_channels
            try run(
                [
                    "import", torch.appendingPathComponent(smp.weights).path, "--arch", smp.encoder_name + "-unet",
                    "--in-channels", "\(c)", "--classes", "\(smp.classes)", "--decoder-channels",
                    smp.decoder_channels.map(String.init).joined(separator: ","), "--mean",
                    [String](repeating: "0", count: c).joined(separator: ","), "--std",
                    [String](repeating: "1", count: c).joined(separator: ","), "--crop", "64", "--out", model.path
                ])
            let reference = try SafeTensorsFile(contentsOf: torch.appendingPathComponent(smp.reference))
            let input = try reference.tensor("input"), expected = try reference.tensor("logits")
            let h = input.shape[2], w = input.shape[3], planes = input.scalars
            // Planar [C][H][W] to interleaved samples.
            let plane: Int = h * w
            var samples = [Float](repeating: 0, count: plane * c)
            for p in 0..<plane { for k in 0..<c { samples[p * c + k] = planes[k * plane + p] } }
            let image = folder.appendingPathComponent("\(name).tif")
            try ImageCodec.write(Image(width: w, height: h, channels: c, samples: .float32(samples)), to: image)
            let out = folder.appendingPathComponent("seg-\(name)")
            try run([
                "segment", image.path, "--model", model.path, "--out", out.path, "--quiet", "--outputs", "mask,logits",
                "--output-format", "png", "--tile", "\(max(h, w))"
            ])
            let written = try SafeTensorsFile(contentsOf: out.appendingPathComponent("logits/\(name).safetensors"))
            let logits = try written.tensor("logits")
            XCTAssertEqual(logits.shape, Array(expected.shape.dropFirst()), name)
            let scale = expected.scalars.map(abs).max() ?? 1
            let worst = zip(logits.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(
                worst / scale, 1e-4, "\(name): max |difference| \(worst), logits of scale \(scale)")
            // The mask is the logits' argmax.
            let mask = try ImageCodec.decode(out.appendingPathComponent("\(name).png"))
            XCTAssertEqual([mask.width, mask.height], [w, h])
            let classes = smp.classes, e = expected.scalars
            var disagree = 0
            for p in 0..<(h * w) {
                let best = (0..<classes).max { e[$0 * h * w + p] < e[$1 * h * w + p] } ?? 0
                if mask.sample(x: p % w, y: p / w, channel: 0) != best { disagree += 1 }
            }
            XCTAssertLessThanOrEqual(
                disagree, h * w / 1000, "\(name): \(disagree) mask pixels differ from PyTorch's argmax")
        }
        // Weights for another architecture: refused, nothing written.
        let weights = torch.appendingPathComponent("smp_unet_resnet18.smp.safetensors")
        let wrong = folder.appendingPathComponent("wrong.safetensors")
        XCTAssertThrowsError(
            try run([
                "import", weights.path, "--arch", "resnet34-unet", "--in-channels", "1", "--classes", "2", "--out",
                wrong.path
            ]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: wrong.path))
    }
}
