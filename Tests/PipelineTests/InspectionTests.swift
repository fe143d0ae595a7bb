import Foundation
import TesseraData
import TesseraEngine
import TesseraInference
import XCTest

final class InspectionTests: XCTestCase {
    func testReportsTensorsAndErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("insp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.safetensors"), bad = dir.appendingPathComponent("bad.safetensors")
        try SafeTensorsFile.write([("conv1.weight", Tensor.zeros([4, 1, 3, 3]))], metadata: ["arch": "unet"], to: good)
        try Data([9, 0, 0, 0, 0, 0, 0, 0, 0x7B]).write(to: bad)

        let ok = Inspection(path: good.path)
        XCTAssertFalse(ok.failed)
        XCTAssertEqual(
            ok.lines,
            [
                "\(good.path): safetensors, 1 tensors", "  metadata arch = unet",
                "  conv1.weight  F32  [4, 1, 3, 3]"
            ])
        let broken = Inspection(path: bad.path)
        XCTAssertTrue(broken.failed)
        XCTAssertEqual(broken.lines.count, 1)
        XCTAssertTrue(
            broken.lines[0].hasPrefix("\(bad.path): error: header length 9 runs past the end"), broken.lines[0])
        let missing = Inspection(path: dir.appendingPathComponent("nope.safetensors").path)
        XCTAssertTrue(missing.failed)
        XCTAssertEqual((ok.json["tensors"] as? [[String: Any]])?.first?["shape"] as? [Int], [4, 1, 3, 3])

        let png = dir.appendingPathComponent("img.png")
        try ImageCodec.write(Image(width: 3, height: 2, channels: 1, samples: .uint16([1, 2, 3, 4, 5, 6])), to: png)
        let image = Inspection(path: png.path)
        XCTAssertEqual(image.lines, ["\(png.path): png, 3x2, 1 channels, 16-bit"])
        XCTAssertEqual(image.json["bit_depth"] as? Int, 16)
        // A PNG whose header is fine but whose pixel data is cut off is reported, not passed.
        let cut = dir.appendingPathComponent("cut.png")
        let whole = try Data(contentsOf: png)
        try whole.prefix(whole.count - 20).write(to: cut)
        XCTAssertTrue(Inspection(path: cut.path).failed)
    }
}
