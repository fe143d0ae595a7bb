import Foundation
import TesseraData
import TestSupport
import XCTest

/// A folder as users have them: every image layout, tiny and odd sizes, odd names, and damaged files, through
/// `tessera segment` and `tessera explain` with a 1-channel and a 3-channel model (run as processes, so a crash
/// fails the test): no crash, every readable image gets outputs of its own size, every damaged file is reported
/// by path and reason, and the exit status is 1.
final class MixedFolderTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-mixed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func noise(_ w: Int, _ h: Int, _ c: Int, sixteen: Bool = false) -> Image {
        var g = SystemRandomNumberGenerator()
        let n = w * h * c
        return sixteen
            ? Image(
                width: w, height: h, channels: c,
                samples: .uint16((0..<n).map { _ in .random(in: 0...65535, using: &g) }))
            : Image(
                width: w, height: h, channels: c, samples: .uint8((0..<n).map { _ in .random(in: 0...255, using: &g) }))
    }

    /// Readable inputs by file name, and damaged ones by file name.
    func makeFolder() throws -> (readable: [String], damaged: [String]) {
        let input = dir.appendingPathComponent("in")
        func write(_ image: Image, _ name: String, palette: [[UInt8]]? = nil) throws {
            try ImageCodec.write(image, to: input.appendingPathComponent(name), palette: palette)
        }
        try write(noise(40, 30, 1), "gray.png")
        try write(noise(40, 30, 1, sixteen: true), "gray16.png")
        try write(noise(33, 20, 2), "gray+alpha.png")
        try write(noise(40, 30, 3), "rgb.png")
        try write(noise(41, 29, 4), "rgba.png")
        try write(noise(20, 20, 4, sixteen: true), "rgba16.png")
        try write(noise(40, 30, 3), "photo.jpg")
        let indices = Image(width: 25, height: 17, channels: 1, samples: .uint8((0..<425).map { UInt8($0 % 4) }))
        try write(indices, "palette.png", palette: [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]])
        try write(noise(1, 1, 1), "tiny 1x1.png")
        try write(noise(3, 700, 3), "thin-3x700.png")
        try write(noise(17, 9, 1), "zellkern ü 細胞.png")
        try FileManager.default.createSymbolicLink(
            at: input.appendingPathComponent("link.png"),
            withDestinationURL: input.appendingPathComponent("rgb.png"))
        var readable = [
            "gray.png", "gray16.png", "gray+alpha.png", "rgb.png", "rgba.png", "rgba16.png", "photo.jpg",
            "palette.png", "tiny 1x1.png", "thin-3x700.png", "zellkern ü 細胞.png", "link.png"
        ]
        // Layouts the codecs read from the conformance suites: 1- and 2-bit gray, a 1-bit palette, palette with
        // transparency, Adam7 16-bit RGBA, CMYK and EXIF-rotated JPEG.
        let shared = SharedFixtures.sharedRoot.appendingPathComponent("data")
        for name in [
            "pngsuite/png/basn0g01.png", "pngsuite/png/basn0g02.png", "pngsuite/png/basn3p01.png",
            "pngsuite/png/tbbn3p08.png", "pngsuite/png/basi6a16.png", "jpeg/cmyk.jpg", "jpeg/exif-orientation6.jpg"
        ] {
            let url = try SharedFixtures.require(shared.appendingPathComponent(name))
            try FileManager.default.copyItem(at: url, to: input.appendingPathComponent(url.lastPathComponent))
            readable.append(url.lastPathComponent)
        }
        let whole = try ImageCodec.encodePNG(noise(64, 64, 1))
        try whole.prefix(whole.count / 2).write(to: input.appendingPathComponent("truncated.png"))
        try Data().write(to: input.appendingPathComponent("empty.png"))
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255) }).write(
            to: input.appendingPathComponent("random.png"))
        try Data("not a picture\n".utf8).write(to: input.appendingPathComponent("notes.jpg"))
        try FileManager.default.createDirectory(
            at: input.appendingPathComponent("folder.png"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: input.appendingPathComponent("dangling.png").path,
            withDestinationPath: "/nonexistent/x.png")
        return (readable, ["truncated.png", "empty.png", "random.png", "notes.jpg", "folder.png", "dangling.png"])
    }

    func testEveryLayoutAndEveryDamagedFileThroughSegmentAndExplain() throws {
        let (readable, damaged) = try makeFolder()
        let input = dir.appendingPathComponent("in")
        for channels in [1, 3] {
            let model = dir.appendingPathComponent("model\(channels).safetensors")
            try TesseraProcess.checkpoint(channels: channels, at: model)
            for command in ["segment", "explain"] {
                let out = dir.appendingPathComponent("\(command)\(channels)")
                // A box of one pixel is a target region in every image (an untrained model may predict nothing).
                let extra =
                    command == "explain"
                    ? ["--box", "0,0,1,1", "--outputs", "heatmap,overlay"] : ["--outputs", "mask,color,overlay,prob"]
                let r = try TesseraProcess.run([command, input.path, "--model", model.path, "--out", out.path] + extra)
                let label = "\(command), \(channels)-channel model"
                XCTAssertTrue(r.exited, "\(label) crashed: \(r.stderr.suffix(600))")
                XCTAssertEqual(r.status, 1, "\(label): \(r.stderr.suffix(600))")
                for name in readable {
                    let source = try ImageCodec.decode(input.appendingPathComponent(name))
                    let stem = (name as NSString).deletingPathExtension
                    let output = out.appendingPathComponent(
                        command == "segment" ? stem + ".png" : "heatmap/" + stem + ".png")
                    guard let made = try? ImageCodec.info(of: output) else {
                        XCTFail("\(label): no output for \(name)"); continue
                    }
                    XCTAssertEqual([made.width, made.height], [source.width, source.height], "\(label): \(name)")
                }
                let report =
                    try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json")))
                    as? [String: Any]
                let records = report?["images"] as? [[String: Any]] ?? []
                XCTAssertEqual(records.count, readable.count + damaged.count, label)
                for name in damaged {
                    let record = records.first { $0["path"] as? String == name }
                    XCTAssertEqual(record?["status"] as? String, "failed", "\(label): \(name)")
                    let reason = record?["error"] as? String ?? ""
                    XCTAssertTrue(
                        reason.contains(input.appendingPathComponent(name).path)
                            && reason.count > input.path.count + name.count + 4,
                        "\(label): \(name): '\(reason)'")
                    XCTAssertTrue(r.stderr.contains(name), "\(label): \(name) is not on standard error")
                }
                XCTAssertEqual(records.filter { $0["status"] as? String == "done" }.count, readable.count, label)
            }
        }
    }
}
