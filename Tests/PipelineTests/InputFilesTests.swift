import Foundation
import TesseraData
import TesseraInference
import XCTest

final class InputFilesTests: XCTestCase {
    func testFoldersExpandSortedWithRelativePathsAndBadFilesAreReported() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-inputs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("b/c"), withIntermediateDirectories: true)
        let image = Image(width: 3, height: 2, channels: 1, samples: .uint8([0, 1, 2, 3, 4, 5]))
        for name in ["z.png", "a.PNG", "b/c/deep.png", "b/mid.jpg"] {
            try ImageCodec.write(image, to: root.appendingPathComponent(name))
        }
        try Data("notes".utf8).write(to: root.appendingPathComponent("notes.txt"))
        try Data("broken".utf8).write(to: root.appendingPathComponent("broken.png"))

        let flat = try InputFiles([root.path], extensions: ["png", "jpg"], recursive: false)
        XCTAssertEqual(flat.entries.map(\.relativePath), ["a.PNG", "broken.png", "z.png"])
        let deep = try InputFiles([root.path], extensions: ["png", "jpg"], recursive: true)
        XCTAssertEqual(deep.entries.map(\.relativePath), ["a.PNG", "b/c/deep.png", "b/mid.jpg", "broken.png", "z.png"])
        let direct = try InputFiles([root.appendingPathComponent("b/mid.jpg").path], extensions: [], recursive: false)
        XCTAssertEqual(direct.entries.map(\.relativePath), ["mid.jpg"])
        XCTAssertThrowsError(
            try InputFiles([root.appendingPathComponent("missing").path], extensions: [], recursive: false))

        let reports = deep.entries.map { Inspection(path: $0.url.path) }
        XCTAssertEqual(reports.filter(\.failed).map { URL(fileURLWithPath: $0.path).lastPathComponent }, ["broken.png"])
        XCTAssertTrue(reports.first(where: \.failed)!.lines[0].contains("not a PNG, JPEG or TIFF"))
    }
}
