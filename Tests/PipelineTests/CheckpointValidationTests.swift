import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import XCTest

/// A checkpoint is untrusted input: each metadata field mutated to a bad value ends `tessera segment` and
/// `tessera explain` with an error naming the file and the field, never a crash, and nothing written.
final class CheckpointValidationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
        let image = Image(width: 20, height: 12, channels: 1, samples: .uint8((0..<240).map { UInt8($0 % 256) }))
        try ImageCodec.write(image, to: dir.appendingPathComponent("in/a.png"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// `good` with its `info` (or `training`) metadata edited by `edit`, and tensors by `tensors`.
    func mutated(
        _ name: String, info edit: (inout [String: Any]) -> Void = { _ in }, training: String? = nil,
        tensors: (inout [(name: String, tensor: Tensor)]) -> Void = { _ in }
    ) throws -> URL {
        let good = dir.appendingPathComponent("good.safetensors")
        if !FileManager.default.fileExists(atPath: good.path) { try TesseraProcess.checkpoint(channels: 1, at: good) }
        let file = try SafeTensorsFile(contentsOf: good)
        var metadata = file.metadata
        var info = try JSONSerialization.jsonObject(with: Data(metadata["info"]!.utf8)) as! [String: Any]
        edit(&info)
        metadata["info"] = String(decoding: try JSONSerialization.data(withJSONObject: info), as: UTF8.self)
        if let training { metadata["training"] = training }
        var list = try file.names.map { (name: $0, tensor: try file.tensor($0)) }
        tensors(&list)
        let url = dir.appendingPathComponent("\(name).safetensors")
        try SafeTensorsFile.write(list, metadata: metadata, to: url)
        return url
    }

    func testEveryBadFieldIsAnErrorNamingIt() throws {
        func unet(_ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
            { info in
                var u = info["unet"] as! [String: Any]; edit(&u); info["unet"] = u
            }
        }
        let cases: [(name: String, field: String, url: URL)] = [
            ("crop-zero", "info.crop", try mutated("crop-zero") { $0["crop"] = 0 }),
            ("crop-negative", "info.crop", try mutated("crop-negative") { $0["crop"] = -64 }),
            ("std-zero", "info.normalizationStd", try mutated("std-zero") { $0["normalizationStd"] = [0] }),
            ("mean-empty", "info.normalizationMean", try mutated("mean-empty") { $0["normalizationMean"] = [Float]() }),
            (
                "colours-short", "info.classColors",
                try mutated("colours-short") { $0["classColors"] = [[0, 0], [1, 1, 1], [2, 2, 2]] }
            ),
            (
                "colour-range", "info.classColors",
                try mutated("colour-range") { $0["classColors"] = [[0, 0, 0], [1, 1, 1], [2, 2, 999]] }
            ),
            (
                "names-escape", "info.classNames",
                try mutated("names-escape") { $0["classNames"] = ["bg", "../../escape", "c2"] }
            ),
            ("names-count", "info.classNames", try mutated("names-count") { $0["classNames"] = ["bg", "cell"] }),
            (
                "names-control", "info.classNames",
                try mutated("names-control") { $0["classNames"] = ["bg", "a\nb", "c2"] }
            ),
            (
                "huge", "info.unet",
                try mutated(
                    "huge",
                    info: unet {
                        $0["width"] = 1024; $0["depth"] = 8
                    })
            ),
            ("step-negative", "info.step", try mutated("step-negative") { $0["step"] = -1 }),
            ("epoch-negative", "info.epoch", try mutated("epoch-negative") { $0["epoch"] = -3 }),
            ("depth-range", "unet.depth", try mutated("depth-range", info: unet { $0["depth"] = 99 })),
            ("training-unreadable", "training", try mutated("training-unreadable", training: "{\"images\": ")),
            ("training-not-object", "training", try mutated("training-not-object", training: "[1, 2]")),
            (
                "nan-weights", "non-finite",
                try mutated(
                    "nan-weights",
                    tensors: { list in
                        let t = list[0].tensor.contiguous()
                        t.pointer[0] = .nan
                        list[0] = (list[0].name, t)
                    })
            )
        ]
        for c in cases {
            XCTAssertThrowsError(try Checkpoint.read(c.url), c.name) { error in
                XCTAssertTrue("\(error)".contains(c.field) && "\(error)".contains(c.url.path), "\(c.name): \(error)")
            }
            for command in ["segment", "explain"] {
                let out = dir.appendingPathComponent("out-\(c.name)-\(command)")
                let before = TesseraProcess.files(under: dir)
                let r = try TesseraProcess.run([
                    command, dir.appendingPathComponent("in").path, "--model", c.url.path,
                    "--out", out.path
                ])
                XCTAssertTrue(r.exited, "\(c.name) \(command): crashed\n\(r.stderr.prefix(400))")
                XCTAssertNotEqual(r.status, 0, "\(c.name) \(command)")
                XCTAssertTrue(r.stderr.contains(c.field), "\(c.name) \(command): \(r.stderr.prefix(400))")
                XCTAssertEqual(TesseraProcess.files(under: dir), before, "\(c.name) \(command): files were written")
            }
        }
        // The mask kind is a name Checkpoint keeps as text; segment and explain, which make truth-mask decoders
        // from it, refuse a name no decoder knows before writing anything.
        let maskKind = try mutated("mask-kind") { $0["maskKind"] = "jpeg-ish" }
        for command in ["segment", "explain"] {
            let before = TesseraProcess.files(under: dir)
            let r = try TesseraProcess.run([
                command, dir.appendingPathComponent("in").path, "--model", maskKind.path, "--out",
                dir.appendingPathComponent("out-mask-kind-\(command)").path
            ])
            XCTAssertTrue(r.exited && r.status != 0, "mask-kind \(command): \(r.stderr.prefix(400))")
            XCTAssertTrue(
                r.stderr.contains("info.maskKind") && r.stderr.contains(maskKind.path),
                "\(command): \(r.stderr.prefix(400))")
            XCTAssertEqual(TesseraProcess.files(under: dir), before, "mask-kind \(command): files were written")
        }
        // The unmutated checkpoint is accepted (the checks can pass).
        XCTAssertNoThrow(try Checkpoint.read(try mutated("unchanged")))
    }
}
