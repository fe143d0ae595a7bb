import Foundation
import TesseraData
import TesseraEngine
import XCTest

/// Renders a page in headless Chromium (Debian's chromium-headless-shell, installed by `make test`) to a PNG.
enum ReportScreenshot {
    static let candidates = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]

    /// The browser, or nil after a visible skip message (a failure under REQUIRE_SHARED=1, where `make test` has
    /// installed it).
    static func browser(file: StaticString = #filePath, line: UInt = #line) -> String? {
        if let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return path }
        let message = "headless Chromium not installed (make test installs chromium-headless-shell)"
        if ProcessInfo.processInfo.environment["REQUIRE_SHARED"] == "1" {
            XCTFail(message + " (REQUIRE_SHARED=1)", file: file, line: line)
        } else {
            print("SKIP: " + message)
        }
        return nil
    }

    /// A 1000 x 3000 screenshot of `page` (a URL string) decoded, or a thrown error naming the browser's output.
    static func render(_ page: String, browser: String) throws -> Image {
        let png = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-shot-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: png) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: browser)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,3000",
            "--screenshot=\(png.path)", page
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.terminate() }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard FileManager.default.fileExists(atPath: png.path) else {
            throw FileError(file: png.path, reason: "no screenshot; browser said: \(text.suffix(500))")
        }
        return try ImageCodec.decode(png)
    }

    /// Share of pixels that differ from the top-left pixel (the page background), and the number of distinct
    /// colours quantised to 4 bits per channel.
    static func content(of image: Image) -> (nonBackground: Double, colours: Int) {
        let background = (0..<image.channels).map { image.sample(x: 0, y: 0, channel: $0) }
        var differing = 0
        var colours = Set<Int>()
        for y in 0..<image.height {
            for x in 0..<image.width {
                let px = (0..<min(3, image.channels)).map { image.sample(x: x, y: y, channel: $0) }
                if px != Array(background.prefix(px.count)) { differing += 1 }
                colours.insert(px.reduce(0) { $0 << 4 | ($1 >> 4) })
            }
        }
        return (Double(differing) / Double(image.width * image.height), colours.count)
    }
}
